"""initial operations store: tickets, reporters, transitions, callbacks, api keys

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-01 10:14:27.821559
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("address_id", sa.String(length=128), nullable=True),
        sa.Column("community_id", sa.String(length=128), nullable=True),
        sa.Column("subdistrict_id", sa.String(length=128), nullable=True),
        sa.Column("city_id", sa.String(length=128), nullable=True),
        sa.Column("outside_city", sa.Boolean(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("routing_rule", sa.String(length=128), nullable=False),
        sa.Column("urgency", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("media", sa.Text(), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("likely_duplicate_of", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("due_sign", sa.DateTime(), nullable=False),
        sa.Column("due_contact", sa.DateTime(), nullable=False),
        sa.Column("due_resolve", sa.DateTime(), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("status_notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_department"), ["department"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_requested_at"), ["requested_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_service_code"), ["service_code"], unique=False)
        batch_op.create_index("ix_tickets_service_state", ["service_code", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_tickets_subdistrict_id"), ["subdistrict_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tickets_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("satisfaction", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callbacks_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "reporters",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=200), nullable=True),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attachment", sa.Text(), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transitions_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_transitions_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transitions_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_transitions_at"))

    op.drop_table("transitions")
    op.drop_table("reporters")
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callbacks_ticket_id"))

    op.drop_table("callbacks")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_updated_at"))
        batch_op.drop_index(batch_op.f("ix_tickets_subdistrict_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_state"))
        batch_op.drop_index("ix_tickets_service_state")
        batch_op.drop_index(batch_op.f("ix_tickets_service_code"))
        batch_op.drop_index(batch_op.f("ix_tickets_requested_at"))
        batch_op.drop_index(batch_op.f("ix_tickets_department"))
        batch_op.drop_index(batch_op.f("ix_tickets_community_id"))

    op.drop_table("tickets")
    op.drop_table("api_keys")
