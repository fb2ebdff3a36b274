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

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityos.ops.models import Base

__all__ = [
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


class StaFeature(_Bbox, Base):
    __tablename__ = "sta_features"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    encoding_type: Mapped[str] = mapped_column(String(100))
    feature: Mapped[str] = mapped_column(Text)  # GeoJSON
    properties: Mapped[str | None] = mapped_column(Text)


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
