"""Observations in bulk: the dataArray extension of SensorThings (``POST CreateObservations``)
and the check that keeps a redelivered MQTT message from being stored twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from cityos.errors import InputError
from cityos.lifelines.entities import check_reading, parse_time, result_number
from cityos.lifelines.latest import note_readings
from cityos.lifelines.models import StaDatastream, StaObservation
from cityos.lifelines.sta import Locate, features_for

__all__ = ["create_observations", "not_stored"]

_COMPONENTS = {
    "phenomenonTime",
    "result",
    "resultTime",
    "FeatureOfInterest/id",
    "resultQuality",
    "parameters",
}


def create_observations(
    conn: Connection, body: Any, locate: Locate
) -> tuple[list[str], dict[int, list[float | None]]]:
    """The dataArray extension (``POST CreateObservations``): many observations of several
    datastreams in one request, written in bulk; returns the new observations' paths (in
    order) and the values written per datastream.

    Raises
    ------
    InputError
        Not a list of ``{Datastream, components, dataArray}``, an unknown component or
        datastream, a row of the wrong length, a time that does not parse (every problem of
        the request at once; nothing is written then).
    """
    if not isinstance(body, list):
        raise InputError("CreateObservations takes a list of {Datastream, components, dataArray}")
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    named = [g["Datastream"].get("@iot.id") for g in body
             if isinstance(g, dict) and isinstance(g.get("Datastream"), dict)]  # fmt: skip
    wanted = [i for i in named if isinstance(i, int) and 0 < i < 2**31]
    known: dict[int, str] = (
        {int(r[0]): str(r[1]) for r in conn.execute(
            select(StaDatastream.id, StaDatastream.observation_type).where(StaDatastream.id.in_(wanted)))}
        if wanted else {}
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for n, group in enumerate(body, 1):
        at = f"group {n}"
        ref = group.get("Datastream") if isinstance(group, dict) else None
        sid = ref.get("@iot.id") if isinstance(ref, dict) else None
        comps = group.get("components") if isinstance(group, dict) else None
        data = group.get("dataArray") if isinstance(group, dict) else None
        if not isinstance(sid, int) or not isinstance(comps, list) or not isinstance(data, list):
            problems.append(f'{at}: give Datastream {{"@iot.id": ID}}, components and dataArray')
            continue
        unknown = [c for c in comps if c not in _COMPONENTS]
        if unknown or "result" not in comps:
            problems.append(f"{at}: components must include result, from {', '.join(sorted(_COMPONENTS))}"
                            + (f"; unknown {unknown}" if unknown else ""))  # fmt: skip
            continue
        if sid not in known:
            problems.append(f"{at}: no Datastream with @iot.id {sid}")
            continue
        for i, values in enumerate(data):
            if not isinstance(values, list) or len(values) != len(comps):
                problems.append(f"{at} row {i + 1}: {len(comps)} values expected")
                continue
            item = dict(zip(comps, values, strict=True))
            result = item["result"]
            try:
                when = (
                    parse_time(str(item["phenomenonTime"]), "phenomenonTime")
                    if "phenomenonTime" in item
                    else None
                )
                rtime = (
                    parse_time(str(item["resultTime"]), "resultTime")
                    if item.get("resultTime")
                    else None
                )
            except InputError as exc:
                problems.append(f"{at} row {i + 1}: {exc}")
                continue
            problem = check_reading(known[sid], result, when, now, rtime)
            if problem:
                problems.append(f"{at} row {i + 1}: {problem}")
                continue
            feature = item.get("FeatureOfInterest/id")
            rows.append({"datastream_id": sid, "feature_id": feature,
                         "phenomenon_time": when or dt.datetime.now(dt.UTC).replace(tzinfo=None),
                         "result_time": rtime, "result": json.dumps(result, ensure_ascii=False),
                         "result_number": result_number(result),
                         "result_quality": json.dumps(item["resultQuality"]) if "resultQuality" in item else None,
                         "parameters": json.dumps(item["parameters"]) if "parameters" in item else None})  # fmt: skip
    if problems:
        raise InputError(
            "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        )
    defaults = features_for(
        conn, sorted({r["datastream_id"] for r in rows if r["feature_id"] is None})
    )
    for r in rows:
        if r["feature_id"] is None:
            r["feature_id"] = defaults[r["datastream_id"]]
    ids: list[int] = []
    if rows:
        stmt = insert(StaObservation).returning(StaObservation.id, sort_by_parameter_order=True)
        ids = [int(r[0]) for r in conn.execute(stmt, rows)]
        note_readings(
            conn, [(r["datastream_id"], r["phenomenon_time"], r["result_number"]) for r in rows]
        )
    fresh: dict[int, list[float | None]] = {}
    for r in rows:
        fresh.setdefault(r["datastream_id"], []).append(r["result_number"])
    return [f"Observations({i})" for i in ids], fresh


def not_stored(conn: Connection, stream: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The observations of a redelivered message not already stored on datastream ``stream``:
    one with the same phenomenonTime and result is the first delivery, committed before its
    acknowledgement was lost. Items without a phenomenonTime (stamped on arrival) or with one
    that does not parse are kept (the latter to be refused with the reason)."""
    times: dict[int, dt.datetime] = {}
    for n, item in enumerate(items):
        text = item.get("phenomenonTime")
        if isinstance(text, str):
            with contextlib.suppress(InputError):
                times[n] = parse_time(text, "phenomenonTime")
    if not times:
        return items
    rows = conn.execute(
        select(StaObservation.phenomenon_time, StaObservation.result).where(
            StaObservation.datastream_id == stream,
            StaObservation.phenomenon_time.in_(sorted(set(times.values()))),
        )
    )
    seen: dict[dt.datetime, list[Any]] = {}
    for when, result in rows:
        seen.setdefault(when, []).append(json.loads(result))
    return [
        item for n, item in enumerate(items)
        if n not in times or item.get("result") not in seen.get(times[n], [])
    ]  # fmt: skip
