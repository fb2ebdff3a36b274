"""One-network operations (一网统管): the operations store and the citizen hotline (12345
接诉即办) behind ``cityos serve``. The store is SQLAlchemy 2 over SQLite (WAL, ``synchronous=FULL``)
or PostgreSQL, its schema Alembic migrations; workflow, routing, deadlines and the service
catalogue are data (TOML) with their sources."""
