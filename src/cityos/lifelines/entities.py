"""The SensorThings entity sets cityos serves, as data: each set's JSON members (and the column
that stores each), its navigation links, and the conversions between a stored row and the JSON
of OGC 18-088 (SensorThings API Part 1: Sensing, version 1.1)."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Table

from cityos.errors import InputError
from cityos.lifelines.models import (
    StaDatastream,
    StaFeature,
    StaLocation,
    StaObservation,
    StaObservedProperty,
    StaSensor,
    StaThing,
    thing_locations,
)
from cityos.ops.models import Base

__all__ = [
    "ENTITY_SETS",
    "EntitySet",
    "Link",
    "Member",
    "by_singular",
    "parse_time",
    "result_number",
    "stamp",
]

Kind = Literal["text", "json", "geo", "time", "result"]


@dataclass(frozen=True)
class Member:
    """A JSON member of an entity: its name, the column that stores it, how it is stored
    (text, JSON text, GeoJSON text with a bounding box, a time), whether it is required."""

    name: str
    column: str
    kind: Kind = "text"
    required: bool = False


@dataclass(frozen=True)
class Link:
    """A navigation link: to one entity (``column`` is this table's foreign key), to many
    (``column`` is the target's foreign key to this one), or many-to-many (a link table)."""

    name: str
    target: str
    kind: Literal["one", "many", "m2m"]
    column: str = ""


@dataclass(frozen=True)
class EntitySet:
    name: str
    singular: str
    model: type[Base]
    members: tuple[Member, ...]
    links: tuple[Link, ...]

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__  # type: ignore[assignment]
        return table

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def link(self, name: str) -> Link | None:
        return next((k for k in self.links if k.name == name), None)


_NAME = (Member("name", "name", required=True), Member("description", "description", required=True))
_PROPS = Member("properties", "properties", "json")

ENTITY_SETS: dict[str, EntitySet] = {
    s.name: s
    for s in (
        EntitySet("Things", "Thing", StaThing, (*_NAME, _PROPS), (
            Link("Locations", "Locations", "m2m"), Link("Datastreams", "Datastreams", "many", "thing_id"),
        )),
        EntitySet("Locations", "Location", StaLocation, (
            *_NAME, Member("encodingType", "encoding_type", required=True),
            Member("location", "location", "geo", required=True), _PROPS,
        ), (Link("Things", "Things", "m2m"),)),
        EntitySet("Sensors", "Sensor", StaSensor, (
            *_NAME, Member("encodingType", "encoding_type", required=True),
            Member("metadata", "metadata", required=True), _PROPS,
        ), (Link("Datastreams", "Datastreams", "many", "sensor_id"),)),
        EntitySet("ObservedProperties", "ObservedProperty", StaObservedProperty, (
            Member("name", "name", required=True), Member("definition", "definition", required=True),
            Member("description", "description", required=True), _PROPS,
        ), (Link("Datastreams", "Datastreams", "many", "observed_property_id"),)),
        EntitySet("Datastreams", "Datastream", StaDatastream, (
            *_NAME, Member("observationType", "observation_type", required=True),
            Member("unitOfMeasurement", "unit_of_measurement", "json", required=True), _PROPS,
        ), (
            Link("Thing", "Things", "one", "thing_id"), Link("Sensor", "Sensors", "one", "sensor_id"),
            Link("ObservedProperty", "ObservedProperties", "one", "observed_property_id"),
            Link("Observations", "Observations", "many", "datastream_id"),
        )),
        EntitySet("Observations", "Observation", StaObservation, (
            Member("phenomenonTime", "phenomenon_time", "time"),
            Member("resultTime", "result_time", "time"),
            Member("result", "result", "result", required=True),
            Member("resultQuality", "result_quality", "json"),
            Member("parameters", "parameters", "json"),
        ), (
            Link("Datastream", "Datastreams", "one", "datastream_id"),
            Link("FeatureOfInterest", "FeaturesOfInterest", "one", "feature_id"),
        )),
        EntitySet("FeaturesOfInterest", "FeatureOfInterest", StaFeature, (
            *_NAME, Member("encodingType", "encoding_type", required=True),
            Member("feature", "feature", "geo", required=True), _PROPS,
        ), (Link("Observations", "Observations", "many", "feature_id"),)),
    )
}  # fmt: skip
M2M = thing_locations


def by_singular(name: str) -> EntitySet | None:
    """The entity set whose singular is ``name`` (``Thing`` → Things)."""
    return next((s for s in ENTITY_SETS.values() if s.singular == name), None)


def stamp(value: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with ``Z``, milliseconds kept."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds") + "Z"


_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def parse_time(text: str, what: str) -> dt.datetime:
    """An ISO 8601 instant with its offset, as naive UTC; an interval ``a/b`` gives its start.

    Raises
    ------
    InputError
        Not an instant with an offset (``2026-12-01T08:00:00Z``).
    """
    start = text.split("/", 1)[0].strip()
    if not _TIME.match(start):
        raise InputError(
            f"{what} {text!r}: give an ISO 8601 time with its offset, e.g. 2026-12-01T08:00:00Z"
        )
    value = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def result_number(value: Any) -> float | None:
    """A result as the number the rules compare (None for text, true/false, objects)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def to_row(entity: EntitySet, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The columns of an entity from its JSON (every problem at once); ``partial``: a PATCH,
    absent members left alone."""
    from cityos.lifelines.geometry import bbox_of

    problems: list[str] = []
    row: dict[str, Any] = {}
    for m in entity.members:
        if m.name not in body:
            if m.required and not partial and m.name != "description":
                problems.append(f"{entity.singular}.{m.name} is required")
            continue
        value = body[m.name]
        if m.kind == "text":
            if not isinstance(value, str):
                problems.append(f"{entity.singular}.{m.name} must be a string")
                continue
            row[m.column] = value
        elif m.kind == "json":
            row[m.column] = None if value is None else json.dumps(value, ensure_ascii=False)
        elif m.kind == "result":
            row[m.column] = json.dumps(value, ensure_ascii=False)
            row["result_number"] = result_number(value)
        elif m.kind == "time":
            if value is None:
                row[m.column] = None
            elif not isinstance(value, str):
                problems.append(f"{entity.singular}.{m.name} must be an ISO 8601 time")
            else:
                try:
                    row[m.column] = parse_time(value, f"{entity.singular}.{m.name}")
                except InputError as exc:
                    problems.append(str(exc))
        else:  # geo
            try:
                row[m.column] = json.dumps(value, ensure_ascii=False)
                row["minx"], row["miny"], row["maxx"], row["maxy"] = bbox_of(value)
            except InputError as exc:
                problems.append(f"{entity.singular}.{m.name}: {exc}")
    if not partial and entity.name in ("Things", "Sensors", "Locations", "Datastreams",
                                       "ObservedProperties", "FeaturesOfInterest"):  # fmt: skip
        row.setdefault("description", "")
    if problems:
        raise InputError("; ".join(problems))
    return row


def to_json(
    entity: EntitySet, row: Any, base: str, select: list[str] | None = None
) -> dict[str, Any]:
    """The JSON of a stored row: ``@iot.id``, ``@iot.selfLink``, the members (all, or those of
    ``$select``) and the navigation links."""
    path = f"{base}/{entity.name}({row.id})"
    out: dict[str, Any] = {}
    if select is None or "id" in select or "@iot.id" in select:
        out["@iot.id"] = row.id
    if select is None:
        out["@iot.selfLink"] = path
    for m in entity.members:
        if select is not None and m.name not in select:
            continue
        value = row._mapping[m.column]
        if m.kind in ("json", "geo", "result"):
            out[m.name] = None if value is None else json.loads(value)
        elif m.kind == "time":
            out[m.name] = stamp(value)
        else:
            out[m.name] = value
    if select is None:
        for k in entity.links:
            out[f"{k.name}@iot.navigationLink"] = f"{path}/{k.name}"
        if entity.name == "Things" and getattr(row, "units", None):
            out["cityos:units"] = json.loads(row.units)
    return out


#: how far ahead of the server's clock a reading may be stamped (clock skew)
FUTURE_TOLERANCE = dt.timedelta(hours=1)
#: how far ahead of its issue a forecast may reach
FORECAST_HORIZON = dt.timedelta(days=10)


def check_reading(
    observation_type: str, result: Any, when: dt.datetime | None, now: dt.datetime,
    issued: dt.datetime | None = None,
) -> str | None:  # fmt: skip
    """Why a reading cannot be stored (None: it can): a result not of the datastream's
    observation type (a number for OM_Measurement, a whole number for OM_CountObservation, true
    or false for OM_TruthObservation), or a time ahead of the clock.

    A forecast is a reading whose phenomenonTime lies ahead and whose resultTime (``issued``,
    when it was produced) does not (SensorThings 1.1 §8.2.7): it may reach
    :data:`FORECAST_HORIZON` past its issue (e.g. a rain forecast for the next three hours,
    which the context of the waterlogging rules reads).
    """
    kind = observation_type.rsplit("/", 1)[-1]
    is_number = result_number(result) is not None
    if kind == "OM_Measurement" and not is_number:
        return f"result {result!r} is not a number (the datastream is {kind})"
    if kind == "OM_CountObservation" and not (is_number and float(result).is_integer()):
        return f"result {result!r} is not a whole number (the datastream is {kind})"
    if kind == "OM_TruthObservation" and not isinstance(result, bool):
        return f"result {result!r} is not true or false (the datastream is {kind})"
    clock = f"the clock says {now.isoformat(timespec='seconds')}Z"
    if issued is not None and issued > now + FUTURE_TOLERANCE:
        return f"resultTime {issued.isoformat()}Z is in the future ({clock})"
    if when is not None and when > now + FUTURE_TOLERANCE:
        if issued is None:
            return (f"phenomenonTime {when.isoformat()}Z is in the future ({clock}); "
                    "a forecast gives its resultTime, when it was issued")  # fmt: skip
        if when > issued + FORECAST_HORIZON:
            return (f"phenomenonTime {when.isoformat()}Z is more than {FORECAST_HORIZON.days} "
                    f"days after its resultTime {issued.isoformat()}Z")  # fmt: skip
    return None
