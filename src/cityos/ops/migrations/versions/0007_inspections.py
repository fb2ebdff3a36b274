"""house inspections recorded in the field through the service

One row per inspection event of a building (the housing-safety register's columns, checked
against its schema, as JSON), who recorded it and when, and its photos (stored without EXIF).
`cityos register export` writes them back as the housing_safety register.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("building_id", sa.String(length=200), nullable=False),
        sa.Column("inspection_date", sa.String(length=10), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("photos", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_inspections_building_date", "inspections", ["building_id", "inspection_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_inspections_building_date", table_name="inspections")
    op.drop_table("inspections")
