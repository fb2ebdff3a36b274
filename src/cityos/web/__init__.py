"""The web service of cityos (``cityos serve``): Open311 for citizens' requests, a JSON API for
the hotline's workflow, one FastAPI application over the operations store."""
