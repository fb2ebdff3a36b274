"""sensing tables: the OGC SensorThings entities of lifeline monitoring (Things, Locations,
Sensors, ObservedProperties, Datastreams, Observations, FeaturesOfInterest)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:55:58.640391
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sta_locations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("encoding_type", sa.String(length=100), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.Column("minx", sa.Float(), nullable=True),
        sa.Column("miny", sa.Float(), nullable=True),
        sa.Column("maxx", sa.Float(), nullable=True),
        sa.Column("maxy", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sta_features",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("encoding_type", sa.String(length=100), nullable=False),
        sa.Column("feature", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.Column("minx", sa.Float(), nullable=True),
        sa.Column("miny", sa.Float(), nullable=True),
        sa.Column("maxx", sa.Float(), nullable=True),
        sa.Column("maxy", sa.Float(), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["location_id"], ["sta_locations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sta_features", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sta_features_location_id"), ["location_id"], unique=False
        )
    op.create_table(
        "sta_observed_properties",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sta_sensors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("encoding_type", sa.String(length=100), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sta_things",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.Column("units", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sta_datastreams",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("observation_type", sa.String(length=200), nullable=False),
        sa.Column("unit_of_measurement", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.Column("thing_id", sa.Integer(), nullable=False),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("observed_property_id", sa.Integer(), nullable=False),
        sa.Column("reporting_interval_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["observed_property_id"],
            ["sta_observed_properties.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sensor_id"],
            ["sta_sensors.id"],
        ),
        sa.ForeignKeyConstraint(
            ["thing_id"],
            ["sta_things.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sta_datastreams", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sta_datastreams_observed_property_id"),
            ["observed_property_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_sta_datastreams_sensor_id"), ["sensor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sta_datastreams_thing_id"), ["thing_id"], unique=False)

    op.create_table(
        "sta_thing_locations",
        sa.Column("thing_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["sta_locations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["thing_id"], ["sta_things.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("thing_id", "location_id"),
    )
    op.create_table(
        "sta_observations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("datastream_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=True),
        sa.Column("phenomenon_time", sa.DateTime(), nullable=False),
        sa.Column("result_time", sa.DateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("result_number", sa.Float(), nullable=True),
        sa.Column("result_quality", sa.Text(), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["datastream_id"],
            ["sta_datastreams.id"],
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["sta_features.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sta_observations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sta_observations_stream_time", ["datastream_id", "phenomenon_time"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sta_observations", schema=None) as batch_op:
        batch_op.drop_index("ix_sta_observations_stream_time")

    op.drop_table("sta_observations")
    op.drop_table("sta_thing_locations")
    with op.batch_alter_table("sta_datastreams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sta_datastreams_thing_id"))
        batch_op.drop_index(batch_op.f("ix_sta_datastreams_sensor_id"))
        batch_op.drop_index(batch_op.f("ix_sta_datastreams_observed_property_id"))

    op.drop_table("sta_datastreams")
    op.drop_table("sta_things")
    op.drop_table("sta_sensors")
    op.drop_table("sta_observed_properties")
    with op.batch_alter_table("sta_features", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sta_features_location_id"))
    op.drop_table("sta_features")
    op.drop_table("sta_locations")
