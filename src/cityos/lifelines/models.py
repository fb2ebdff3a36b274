"""The sensing tables of the operations store: the OGC SensorThings entities (Part 1: Sensing
1.1) a lifeline monitor needs.

Things (a monitored object: a manhole's gas detector, a bridge's strain gauge, a depth gauge at
an underpass) have Locations, and their Datastreams (one observed property of one sensor, in
one unit, at a reporting interval) carry Observations, each of a FeatureOfInterest. JSON
members (``properties``, ``unitOfMeasurement``, GeoJSON) are stored as text; every geometry
also as its bounding box, for the spatial filters. A Thing records the units of the city model
its first Location lies in.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cityos.ops.models import Base

__all__ = [
    "Alert",
    "AlertStep",
    "StaDatastream",
    "StaFeature",
    "StaLocation",
    "StaObservation",
    "StaObservedProperty",
    "StaSensor",
    "StaThing",
    "thing_locations",
]


class _Bbox:
    """A geometry's bounding box in WGS84 (for spatial filters; the exact test follows)."""

    minx: Mapped[float | None] = mapped_column(Float)
    miny: Mapped[float | None] = mapped_column(Float)
    maxx: Mapped[float | None] = mapped_column(Float)
    maxy: Mapped[float | None] = mapped_column(Float)


class StaThing(Base):
    __tablename__ = "sta_things"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[str | None] = mapped_column(Text)  # JSON
    units: Mapped[str | None] = mapped_column(Text)  # JSON: level → unit id, from its Location


thing_locations = Table(
    "sta_thing_locations",
    Base.metadata,
    Column("thing_id", ForeignKey("sta_things.id", ondelete="CASCADE"), primary_key=True),
    Column("location_id", ForeignKey("sta_locations.id", ondelete="CASCADE"), primary_key=True),
)


class StaLocation(_Bbox, Base):
    __tablename__ = "sta_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    encoding_type: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(Text)  # GeoJSON
    properties: Mapped[str | None] = mapped_column(Text)


class StaSensor(Base):
    __tablename__ = "sta_sensors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    encoding_type: Mapped[str] = mapped_column(String(100))
    sensor_metadata: Mapped[str] = mapped_column("metadata", Text)
    properties: Mapped[str | None] = mapped_column(Text)


class StaObservedProperty(Base):
    __tablename__ = "sta_observed_properties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    definition: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[str | None] = mapped_column(Text)


class StaDatastream(Base):
    __tablename__ = "sta_datastreams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    observation_type: Mapped[str] = mapped_column(String(200))
    unit_of_measurement: Mapped[str] = mapped_column(Text)  # JSON: name, symbol, definition
    properties: Mapped[str | None] = mapped_column(Text)
    thing_id: Mapped[int] = mapped_column(ForeignKey("sta_things.id"), index=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sta_sensors.id"), index=True)
    observed_property_id: Mapped[int] = mapped_column(
        ForeignKey("sta_observed_properties.id"), index=True
    )
    #: the device's reporting interval in seconds (cityos; from properties.reportingInterval)
    reporting_interval_s: Mapped[float | None] = mapped_column(Float)
    #: its latest reading (the time and the number) and the first reading of the trailing run
    #: of equal results (cityos; for the silent-sensor sweep and the flat-line rule)
    last_phenomenon_time: Mapped[dt.datetime | None]
    last_result_number: Mapped[float | None] = mapped_column(Float)
    flat_since: Mapped[dt.datetime | None]


class StaFeature(_Bbox, Base):
    __tablename__ = "sta_features"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    encoding_type: Mapped[str] = mapped_column(String(100))
    feature: Mapped[str] = mapped_column(Text)  # GeoJSON
    properties: Mapped[str | None] = mapped_column(Text)
    #: the Location it was made from (an Observation that names no feature gets its Thing's)
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("sta_locations.id", ondelete="SET NULL"), index=True
    )


class StaObservation(Base):
    __tablename__ = "sta_observations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    datastream_id: Mapped[int] = mapped_column(ForeignKey("sta_datastreams.id"))
    feature_id: Mapped[int | None] = mapped_column(ForeignKey("sta_features.id"))
    phenomenon_time: Mapped[dt.datetime]
    result_time: Mapped[dt.datetime | None]
    result: Mapped[str] = mapped_column(Text)  # JSON
    result_number: Mapped[float | None] = mapped_column(Float)  # the result when it is a number
    result_quality: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_sta_observations_stream_time", "datastream_id", "phenomenon_time"),)


class Alert(Base):
    """One alert: the rule that raised it (and the rule set's version), the datastream and the
    Thing it is about and the units they lie in, its level (now and the highest), when it was
    raised and when its condition cleared, the readings that raised it, its lifecycle state,
    and the hotline ticket opened for it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    rules_version: Mapped[str] = mapped_column(String(100))
    domain: Mapped[str] = mapped_column(String(50), index=True)
    hazard: Mapped[bool]
    event: Mapped[str] = mapped_column(Text)
    datastream_id: Mapped[int] = mapped_column(ForeignKey("sta_datastreams.id", ondelete="CASCADE"))
    thing_id: Mapped[int | None] = mapped_column(Integer)
    units: Mapped[str | None] = mapped_column(Text)  # JSON: level → unit id
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(10), index=True)
    max_level: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20), index=True)
    raised_at: Mapped[dt.datetime]
    cleared_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    readings: Mapped[str] = mapped_column(Text)  # JSON: [[time, value], …] that raised it
    last_value: Mapped[float | None] = mapped_column(Float)
    last_reading_at: Mapped[dt.datetime | None]
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    #: the hotline tickets that corroborate it (JSON list of ids; they raised it one level)
    tickets: Mapped[str | None] = mapped_column(Text)
    #: the context reading that raised it one level (e.g. rain intensity), as text
    context: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_alerts_open", "rule_id", "datastream_id", "closed_at"),
        Index("ux_alerts_one_open", "rule_id", "datastream_id", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    )  # fmt: skip


class AlertStep(Base):
    """One lifecycle step of an alert: the action, from and to state, who, when, why, and the
    seconds since the alert was raised (timed against the level's limit)."""

    __tablename__ = "alert_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float]
