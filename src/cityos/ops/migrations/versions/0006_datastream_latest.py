"""each datastream's latest reading and the start of its run of equal values; one open alert
per rule and datastream

The sweep for silent sensors reads ``last_phenomenon_time`` instead of grouping every
observation; the flat-line rule reads ``flat_since`` (the first reading of the trailing run of
equal results), so a run longer than the readings a check looks at is still seen, and a quiet
reading that repeats its predecessor is still checked. Back-filled from the observations. The
unique index makes "one open alert per rule × datastream" hold with several writers (worker
processes on PostgreSQL) as well.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sta_datastreams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_phenomenon_time", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_result_number", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("flat_since", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    streams = conn.execute(sa.text("SELECT id FROM sta_datastreams")).scalars().all()
    for sid in streams:
        last = conn.execute(sa.text(
            "SELECT phenomenon_time, result_number FROM sta_observations WHERE datastream_id = :s "
            "ORDER BY phenomenon_time DESC, id DESC LIMIT 1"), {"s": sid}).first()  # fmt: skip
        if last is None:
            continue
        since = last[0] if last[1] is None else _run_start(conn, sid, last[0], last[1])
        conn.execute(sa.text(
            "UPDATE sta_datastreams SET last_phenomenon_time = :t, last_result_number = :v, "
            "flat_since = :f WHERE id = :s"), {"s": sid, "t": last[0], "v": last[1], "f": since})  # fmt: skip
    op.create_index("ux_alerts_one_open", "alerts", ["rule_id", "datastream_id"], unique=True,
                    sqlite_where=sa.text("closed_at IS NULL"),
                    postgresql_where=sa.text("closed_at IS NULL"))  # fmt: skip


def _run_start(conn: sa.Connection, sid: int, last: object, value: float) -> object:
    """The first reading of the trailing run of results equal to ``value``."""
    before = conn.execute(sa.text(
        "SELECT max(phenomenon_time) FROM sta_observations WHERE datastream_id = :s "
        "AND phenomenon_time < :t AND (result_number IS NULL OR result_number <> :v)"),
        {"s": sid, "t": last, "v": value}).scalar()  # fmt: skip
    query = "SELECT min(phenomenon_time) FROM sta_observations WHERE datastream_id = :s"
    if before is None:
        return conn.execute(sa.text(query), {"s": sid}).scalar()
    return conn.execute(
        sa.text(query + " AND phenomenon_time > :b"), {"s": sid, "b": before}
    ).scalar()


def downgrade() -> None:
    op.drop_index("ux_alerts_one_open", table_name="alerts")
    with op.batch_alter_table("sta_datastreams", schema=None) as batch_op:
        batch_op.drop_column("flat_since")
        batch_op.drop_column("last_result_number")
        batch_op.drop_column("last_phenomenon_time")
