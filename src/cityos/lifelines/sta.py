"""SensorThings requests on the store: resource paths (``Things(1)/Datastreams``), lists with
their query options, single entities, creation with deep insert, updates and deletes (with
the cascades of the standard: a Thing takes its Datastreams along, a Datastream its
Observations)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from cityos.errors import InputError, NotFoundError
from cityos.lifelines.entities import (
    ENTITY_SETS,
    M2M,
    EntitySet,
    check_reading,
    to_json,
    to_row,
)
from cityos.lifelines.geometry import from_geojson
from cityos.lifelines.latest import note_readings, refresh_latest
from cityos.lifelines.models import StaDatastream
from cityos.lifelines.odata import Expand, compile_filter, parse_expand, parse_filter, parse_orderby

__all__ = [
    "MAX_TOP",
    "Resource",
    "create",
    "delete_entity",
    "features_for",
    "read",
    "resolve",
    "update_entity",
]

#: the default and the largest page
DEFAULT_TOP, MAX_TOP = 100, 10_000
_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d{1,10})\))?$")
#: links a new entity must have
_REQUIRED_LINKS = {
    "Datastreams": ("Thing", "Sensor", "ObservedProperty"),
    "Observations": ("Datastream",),
}
Locate = Callable[[float, float], Mapping[str, str | None]]


@dataclass(frozen=True)
class Resource:
    """What a path names: an entity set, restricted by ``where``; ``single`` when it names one
    entity (``Things(1)``, ``Datastreams(1)/Thing``); ``parent``: the link a POST attaches to."""

    entity: EntitySet
    where: ColumnElement[bool] | None
    single: bool
    parent: tuple[str, int] | None = None  # (link name on the new entity, id), for POST


def resolve(path: str) -> Resource:
    """The resource of a path below the service root.

    Raises
    ------
    NotFoundError
        An unknown entity set or link.
    """
    segments = [s for s in path.strip("/").split("/") if s]
    if not segments:
        raise NotFoundError("give an entity set: Things, Locations, Sensors, ObservedProperties, "
                            "Datastreams, Observations, FeaturesOfInterest")  # fmt: skip
    first = _SEGMENT.match(segments[0])
    if first is None or first.group(1) not in ENTITY_SETS:
        raise NotFoundError(f"no entity set {segments[0]!r}; use one of {', '.join(ENTITY_SETS)}")
    entity = ENTITY_SETS[first.group(1)]
    where: ColumnElement[bool] | None = None
    single = first.group(2) is not None
    known = int(first.group(2)) if single else None  # the id the path names, if it names one
    if known is not None:
        where = entity.table.c.id == known
    parent: tuple[str, int] | None = None
    for seg in segments[1:]:
        m = _SEGMENT.match(seg)
        link = entity.link(m.group(1)) if m else None
        if m is None or link is None or not single:
            raise NotFoundError(f"{entity.singular}: no link {seg!r} here")
        target = ENTITY_SETS[link.target]
        ids = select(entity.table.c.id).where(where) if where is not None else None
        assert ids is not None
        tt = target.table
        if link.kind == "one":
            cond = tt.c.id.in_(select(entity.table.c[link.column]).where(where))  # type: ignore[arg-type]
        elif link.kind == "many":
            cond = tt.c[link.column].in_(ids)
            back = next(k for k in target.links if k.target == entity.name)
            parent = (back.name, _below(known))
        else:
            mine, theirs = (
                ("thing_id", "location_id")
                if entity.name == "Things"
                else ("location_id", "thing_id")
            )
            cond = tt.c.id.in_(select(M2M.c[theirs]).where(M2M.c[mine].in_(ids)))
            back = next(k for k in target.links if k.target == entity.name)
            parent = (back.name, _below(known))
        entity, where = target, cond
        known = int(m.group(2)) if m.group(2) is not None else None
        single = link.kind == "one" or m.group(2) is not None
        if m.group(2) is not None:
            where = (
                (where & (tt.c.id == int(m.group(2))))
                if where is not None
                else tt.c.id == int(m.group(2))
            )
            parent = None
    return Resource(entity, where, single, parent)


def _below(known: int | None) -> int:
    if known is None:
        raise NotFoundError("create below one entity: Things(ID)/Datastreams")
    return known


def read(
    conn: Connection, res: Resource, params: Mapping[str, str], base: str, url: str
) -> dict[str, Any]:
    """A list (``value``, ``@iot.count``, ``@iot.nextLink``) or one entity, with the query
    options of ``params``."""
    entity = res.entity
    t = entity.table
    stmt = select(t)
    conditions = [res.where] if res.where is not None else []
    if params.get("$filter"):
        conditions.append(compile_filter(parse_filter(params["$filter"]), entity, conn))
    for c in conditions:
        stmt = stmt.where(c)
    select_ = _select_list(params.get("$select"), entity)
    expands = parse_expand(params.get("$expand"))
    if res.single:
        row = conn.execute(stmt.limit(1)).first()
        if row is None:
            raise NotFoundError(f"no {entity.singular} here")
        one = to_json(entity, row, base, select_)
        _expand(conn, entity, [one], [row], expands, base)
        return one
    top = _int(params, "$top", DEFAULT_TOP, 0, MAX_TOP)
    skip = _int(params, "$skip", 0, 0, 2**62)
    for column, desc in parse_orderby(params.get("$orderby"), entity):
        stmt = stmt.order_by(t.c[column].desc() if desc else t.c[column])
    rows = list(conn.execute(stmt.offset(skip).limit(top + 1)).all())
    more = len(rows) > top
    rows = rows[:top]
    values = [to_json(entity, r, base, select_) for r in rows]
    _expand(conn, entity, values, rows, expands, base)
    out: dict[str, Any] = {}
    if params.get("$count", "").lower() == "true":
        counted = select(func.count()).select_from(t)
        for c in conditions:
            counted = counted.where(c)
        out["@iot.count"] = conn.scalar(counted)
    if more:
        out["@iot.nextLink"] = _with_skip(url, skip + top, top)
    out["value"] = values
    return out


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(str(text))
    except ValueError as exc:
        raise InputError(f"{name} {text!r} is not a whole number") from exc
    if not low <= value <= high:
        raise InputError(f"{name} {value} must lie in {low}..{high}")
    return value


def _with_skip(url: str, skip: int, top: int) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("$skip", "$top")
    ]
    query += [("$top", str(top)), ("$skip", str(skip))]
    return urlunsplit(parts._replace(query=urlencode(query, safe="$(),'/ ")))


def _select_list(text: str | None, entity: EntitySet) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ("id", "@iot.id") and entity.member(n) is None]
    if bad:
        raise InputError(f"$select: {entity.singular} has no member {', '.join(bad)}")
    return names


def _expand(conn: Connection, entity: EntitySet, outs: list[dict[str, Any]], rows: list[Any],
            expands: list[Expand], base: str) -> None:  # fmt: skip
    for ex in expands:
        link = entity.link(ex.link)
        if link is None:
            raise InputError(f"$expand: {entity.singular} has no link {ex.link!r}")
        target = ENTITY_SETS[link.target]
        for out, row in zip(outs, rows, strict=True):
            sub = resolve(f"{entity.name}({row.id})/{link.name}")
            params = {**ex.options}
            if not ex.inner:
                params.pop("$expand", None)
            got = read(conn, sub, params, base, f"{base}/{entity.name}({row.id})/{link.name}")
            if ex.inner:  # nested: expand again inside each expanded entity
                inner_rows = (
                    conn.execute(select(target.table).where(sub.where)).all()
                    if sub.where is not None
                    else []
                )
                items = [got] if sub.single else got["value"]
                by_id = {r.id: r for r in inner_rows}
                _expand(conn, target, items, [by_id[i["@iot.id"]] for i in items], ex.inner, base)
            if sub.single:
                out[link.name] = got
            else:
                out[link.name] = got["value"]
                if "@iot.nextLink" in got:
                    out[f"{link.name}@iot.nextLink"] = got["@iot.nextLink"]


# ---- writes ------------------------------------------------------------------------------
def create(conn: Connection, entity: EntitySet, body: Any, locate: Locate,
           parent: tuple[str, int] | None = None) -> int:  # fmt: skip
    """Insert an entity from its JSON, with its linked and nested entities (deep insert);
    returns its id.

    Raises
    ------
    InputError
        A member missing or of the wrong type, a link to an entity that does not exist (every
        problem of one entity at once).
    """
    if not isinstance(body, dict):
        raise InputError(f"{entity.singular}: the body must be a JSON object")
    body = dict(body)
    if parent is not None:
        body[parent[0]] = {"@iot.id": parent[1]}
    row = to_row(entity, body, partial=False)
    for name in _REQUIRED_LINKS.get(entity.name, ()):
        if not isinstance(body.get(name), dict):
            raise InputError(
                f'{entity.singular}.{name} is required: {{"@iot.id": ID}} or the entity'
            )
    for link in entity.links:
        if link.kind == "one" and isinstance(body.get(link.name), dict):
            row[link.column] = _link_or_create(
                conn, ENTITY_SETS[link.target], body[link.name], locate
            )
    if entity.name == "Observations":
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        row.setdefault("phenomenon_time", now)
        kind = conn.scalar(
            select(StaDatastream.observation_type).where(StaDatastream.id == row["datastream_id"])
        )
        problem = check_reading(str(kind or ""), body.get("result"), row["phenomenon_time"], now,
                                row.get("result_time"))  # fmt: skip
        if problem:
            raise InputError(f"Observation: {problem}")
        if row.get("feature_id") is None:
            row["feature_id"] = features_for(conn, [row["datastream_id"]])[row["datastream_id"]]
    if entity.name == "Datastreams":
        row["reporting_interval_s"] = reporting_interval(body.get("properties"))
    new_id = int(
        conn.execute(insert(entity.table).values(row).returning(entity.table.c.id)).scalar_one()
    )
    if entity.name == "Observations":
        note_readings(
            conn, [(row["datastream_id"], row["phenomenon_time"], row.get("result_number"))]
        )
    for link in entity.links:
        nested = body.get(link.name)
        if link.kind == "many" and isinstance(nested, list):
            back = next(k for k in ENTITY_SETS[link.target].links if k.target == entity.name)
            for item in nested:
                create(conn, ENTITY_SETS[link.target], item, locate, (back.name, new_id))
        if link.kind == "m2m" and isinstance(nested, list):
            for item in nested:
                other = _link_or_create(conn, ENTITY_SETS[link.target], item, locate)
                pair = (new_id, other) if entity.name == "Things" else (other, new_id)
                conn.execute(insert(M2M).values(thing_id=pair[0], location_id=pair[1]))
                _place_thing(conn, pair[0], locate)
    if entity.name == "Locations" and parent is not None and parent[0] == "Things":
        conn.execute(insert(M2M).values(thing_id=parent[1], location_id=new_id))
        _place_thing(conn, parent[1], locate)
    return new_id


def _link_or_create(conn: Connection, target: EntitySet, ref: Any, locate: Locate) -> int:
    if isinstance(ref, dict) and "@iot.id" in ref:
        rid = ref["@iot.id"]
        if (
            not isinstance(rid, int)
            or conn.scalar(select(target.table.c.id).where(target.table.c.id == rid)) is None
        ):
            raise InputError(f"no {target.singular} with @iot.id {rid!r}")
        return rid
    return create(conn, target, ref, locate)


def _place_thing(conn: Connection, thing_id: int, locate: Locate) -> None:
    """Record the units of the city model the Thing's first Location lies in."""
    from cityos.lifelines.models import StaLocation, StaThing

    loc = conn.execute(
        select(StaLocation.location).join(M2M, M2M.c.location_id == StaLocation.id)
        .where(M2M.c.thing_id == thing_id).order_by(StaLocation.id).limit(1)
    ).scalar()  # fmt: skip
    if loc is None:
        return
    point = from_geojson(json.loads(loc)).representative_point()
    units = dict(locate(point.x, point.y))
    conn.execute(update(StaThing).where(StaThing.id == thing_id).values(units=json.dumps(units)))


def features_for(conn: Connection, datastream_ids: list[int]) -> dict[int, int]:
    """The FeatureOfInterest of Observations that name none, per datastream: the Location of
    the Datastream's Thing, made a feature once (as the standard says); three queries for a
    batch of thousands.

    Raises
    ------
    InputError
        A datastream whose Thing has no Location.
    """
    from cityos.lifelines.models import StaDatastream, StaFeature, StaLocation

    first = (
        select(StaDatastream.id.label("ds"), func.min(M2M.c.location_id).label("loc"))
        .join(M2M, M2M.c.thing_id == StaDatastream.thing_id)
        .where(StaDatastream.id.in_(datastream_ids)).group_by(StaDatastream.id)
    )  # fmt: skip
    loc_of = {int(r.ds): int(r.loc) for r in conn.execute(first)}
    missing = [d for d in datastream_ids if d not in loc_of]
    if missing:
        raise InputError(
            f"Observation: Datastream {missing[0]}'s Thing has no Location; give a FeatureOfInterest"
        )
    locs = sorted(set(loc_of.values()))
    feature_of: dict[int, int] = {int(r[0] or 0): int(r[1] or 0) for r in conn.execute(
        select(StaFeature.location_id, func.min(StaFeature.id)).where(StaFeature.location_id.in_(locs))
        .group_by(StaFeature.location_id))}  # fmt: skip
    new = [i for i in locs if i not in feature_of]
    if new:
        rows = conn.execute(select(StaLocation).where(StaLocation.id.in_(new))).all()
        made = conn.execute(insert(StaFeature).returning(StaFeature.id, StaFeature.location_id,
                                                          sort_by_parameter_order=True), [
            {"name": loc.name, "description": loc.description, "encoding_type": loc.encoding_type,
             "feature": loc.location, "minx": loc.minx, "miny": loc.miny, "maxx": loc.maxx,
             "maxy": loc.maxy, "location_id": loc.id} for loc in rows])  # fmt: skip
        feature_of.update({int(r[1] or 0): int(r[0]) for r in made})
    return {d: feature_of[loc_of[d]] for d in datastream_ids}


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def reporting_interval(properties: Any) -> float | None:
    """The device's reporting interval in seconds from ``properties.reportingInterval`` (a
    number of seconds or an ISO 8601 duration, ``PT1M``); None when not given.

    Raises
    ------
    InputError
        Neither a positive number nor a duration.
    """
    value = properties.get("reportingInterval") if isinstance(properties, dict) else None
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    m = _DURATION.match(str(value)) if isinstance(value, str) else None
    if m and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    raise InputError(
        f"properties.reportingInterval {value!r}: give seconds or an ISO 8601 duration (PT1M)"
    )


def update_entity(conn: Connection, res: Resource, body: Any, locate: Locate) -> None:
    """Change the members (and one-links given as ``{"@iot.id": ID}``) of one entity."""
    if not res.single or res.where is None:
        raise InputError("PATCH and PUT change one entity: Things(ID)")
    entity = res.entity
    if not isinstance(body, dict):
        raise InputError(f"{entity.singular}: the body must be a JSON object")
    target = conn.execute(select(entity.table.c.id).where(res.where)).scalar()
    if target is None:
        raise NotFoundError(f"no {entity.singular} here")
    row = to_row(entity, body, partial=True)
    for link in entity.links:
        if (
            link.kind == "one"
            and isinstance(body.get(link.name), dict)
            and "@iot.id" in body[link.name]
        ):
            row[link.column] = _link_or_create(
                conn, ENTITY_SETS[link.target], body[link.name], locate
            )
    if entity.name == "Datastreams" and "properties" in body:
        row["reporting_interval_s"] = reporting_interval(body.get("properties"))
    streams = _streams_of(conn, entity, target)
    if row:
        conn.execute(update(entity.table).where(entity.table.c.id == target).values(row))
    refresh_latest(conn, streams | _streams_of(conn, entity, target))


def _streams_of(conn: Connection, entity: EntitySet, observation: int) -> set[int]:
    """The datastream of an observation (none for other entities)."""
    if entity.name != "Observations":
        return set()
    table = entity.table
    return {
        int(i) for i in conn.scalars(select(table.c.datastream_id).where(table.c.id == observation))
    }


def delete_entity(conn: Connection, res: Resource) -> None:
    """Delete one entity and what depends on it."""
    if not res.single or res.where is None:
        raise InputError("DELETE removes one entity: Things(ID)")
    entity = res.entity
    target = conn.execute(select(entity.table.c.id).where(res.where)).scalar()
    if target is None:
        raise NotFoundError(f"no {entity.singular} here")
    streams = _streams_of(conn, entity, int(target))
    _cascade(conn, entity, [int(target)])
    refresh_latest(conn, streams)


def _cascade(conn: Connection, entity: EntitySet, ids: list[int]) -> None:
    for link in entity.links:
        target = ENTITY_SETS[link.target]
        if link.kind == "many":
            dependent = [
                int(i)
                for i in conn.scalars(
                    select(target.table.c.id).where(target.table.c[link.column].in_(ids))
                )
            ]
            if dependent and link.column != "feature_id":
                _cascade(conn, target, dependent)
            elif dependent:  # observations keep their data; their feature is gone
                conn.execute(
                    update(target.table)
                    .where(target.table.c.id.in_(dependent))
                    .values(feature_id=None)
                )
        if link.kind == "m2m":
            column = "thing_id" if entity.name == "Things" else "location_id"
            conn.execute(delete(M2M).where(M2M.c[column].in_(ids)))
    conn.execute(delete(entity.table).where(entity.table.c.id.in_(ids)))
