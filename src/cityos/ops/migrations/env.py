"""Alembic environment of the operations store: the URL and connection come from
:func:`cityos.ops.store.upgrade` (no alembic.ini), the target metadata from the models."""

from __future__ import annotations

from alembic import context

import cityos.lifelines.models  # noqa: F401  (the sensing tables share the metadata)
from cityos.ops.models import Base

connection = context.config.attributes.get("connection")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
