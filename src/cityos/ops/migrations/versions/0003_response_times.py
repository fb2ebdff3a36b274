"""response times on the ticket; a covering index for the duplicate lookup

The month's rates read the time of the current dispatch and of the first contact after it from
the ticket itself (``dispatched_at``, ``contacted_at``) instead of joining every transition:
back-filled here from the audit rows. ``signed_at`` now belongs to the current dispatch too (a
sign-off before a re-dispatch is cleared). The duplicate lookup's index also holds state and
request time, so a hotspot's candidates are filtered without reading their rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("contacted_at", sa.DateTime(), nullable=True))
        batch_op.drop_index("ix_tickets_service_lat_lon")
        batch_op.create_index(
            "ix_tickets_duplicate_lookup",
            ["service_code", "lat", "lon", "state", "requested_at"],
            unique=False,
        )
    op.execute(
        "UPDATE tickets SET dispatched_at = (SELECT MAX(tr.at) FROM transitions tr "
        "WHERE tr.ticket_id = tickets.id AND tr.action IN ('dispatch', 'approve_return'))"
    )
    op.execute(
        "UPDATE tickets SET contacted_at = (SELECT MIN(tr.at) FROM transitions tr "
        "WHERE tr.ticket_id = tickets.id AND tr.action = 'start' "
        "AND tr.at >= tickets.dispatched_at) WHERE dispatched_at IS NOT NULL"
    )
    op.execute("UPDATE tickets SET signed_at = NULL WHERE signed_at < dispatched_at")


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_duplicate_lookup")
        batch_op.create_index(
            "ix_tickets_service_lat_lon", ["service_code", "lat", "lon"], unique=False
        )
        batch_op.drop_column("contacted_at")
        batch_op.drop_column("dispatched_at")
