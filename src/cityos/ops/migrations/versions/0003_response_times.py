"""response times on the ticket; the duplicate lookup by squares of its radius

The month's rates read the time of the current dispatch and of the first contact after it from
the ticket itself (``dispatched_at``, ``contacted_at``) instead of joining every transition:
back-filled here from the audit rows. ``signed_at`` now belongs to the current dispatch too (a
sign-off before a re-dispatch is cleared). The duplicate lookup reads the newest tickets of
the squares around a new one (``near_x``, ``near_y``: the square of side its service's
duplicate radius, in the city's metres) from an index ordered by id, so a hotspot of thousands
costs what a quiet street does. Tickets from before have no square (the migration has no city
to place them in): they stop being duplicate candidates, which lasts one duplicate window.

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
        batch_op.add_column(sa.Column("near_x", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("near_y", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_tickets_service_lat_lon")
        batch_op.create_index(
            "ix_tickets_duplicate_lookup",
            ["service_code", "near_x", "near_y", "id", "state", "requested_at", "lat", "lon"],
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
        batch_op.drop_column("near_y")
        batch_op.drop_column("near_x")
        batch_op.drop_column("contacted_at")
        batch_op.drop_column("dispatched_at")
