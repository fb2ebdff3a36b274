"""index for the duplicate lookup

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:27:50.043697
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_service_lat_lon", ["service_code", "lat", "lon"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_service_lat_lon")
