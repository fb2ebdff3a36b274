"""Historic tickets in, tickets out: a CSV/XLSX of past 12345 requests (the column set below,
Chinese headers accepted) into the store, and the store's tickets out as CSV, XLSX or
GeoPackage (never the reporters' personal data).

Import columns (first match of each list; ``service_code`` and ``requested_at`` required)::

    service_code   service_code, 诉求类别, 类别代码
    requested_at   requested_at, 受理时间, 来电时间
    lat, lon       lat / 纬度, lon / long / 经度 (WGS84)
    address        address, 地址, 事发地址
    description    description, 诉求内容, 内容
    department     department, 承办单位 (else routed by the rules)
    handled_at     handled_at, 办结时间
    resolved       resolved, 是否解决 (是/否, yes/no)
    satisfaction   satisfaction, 满意度
    external_id    id, 工单编号 (kept in the audit row)
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityos.errors import InputError
from cityos.ops.hotline import Hotline, now
from cityos.ops.models import Callback, Ticket, Transition
from cityos.sources.files import find_column, read_table

__all__ = ["IMPORT_COLUMNS", "export_tickets", "import_tickets", "tickets_frame"]

IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "service_code": ("service_code", "诉求类别", "类别代码"),
    "requested_at": ("requested_at", "受理时间", "来电时间"),
    "lat": ("lat", "纬度", "latitude"),
    "lon": ("lon", "long", "经度", "longitude"),
    "address": ("address", "地址", "事发地址"),
    "description": ("description", "诉求内容", "内容"),
    "department": ("department", "承办单位"),
    "handled_at": ("handled_at", "办结时间"),
    "resolved": ("resolved", "是否解决"),
    "satisfaction": ("satisfaction", "满意度"),
    "external_id": ("id", "工单编号", "external_id"),
}
_YES = {"是", "yes", "true", "1", "已解决", "resolved"}
_NO = {"否", "no", "false", "0", "未解决", "unresolved"}


def _when(value: Any, where: str) -> dt.datetime | None:
    if (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    ):
        return None
    stamp = pd.to_datetime(str(value), errors="coerce")
    if pd.isna(stamp):
        raise InputError(f"{where}: {value!r} is not a date-time; use YYYY-MM-DD HH:MM")
    ts = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
    return ts.to_pydatetime()


def import_tickets(session: Session, hotline: Hotline, path: Path) -> int:
    """Read a historic ticket table and store it: every row checked first (all problems in one
    message), then placed, routed (unless it names its department), timed from its own
    ``requested_at``, closed when handled, with a callback when resolution or satisfaction is
    given; one ``import`` audit row each. Returns the number of tickets.

    Raises
    ------
    InputError
        Naming the file, the rows and what is wrong with them.
    """
    table = read_table(path)
    cols = {k: find_column(list(table.columns), v) for k, v in IMPORT_COLUMNS.items()}
    for need in ("service_code", "requested_at"):
        if cols[need] is None:
            raise InputError(
                f"{path}: no column for {need} (any of {', '.join(IMPORT_COLUMNS[need])}); "
                "see `cityos hotline import --help`"
            )
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(table.to_dict("records")):
        line = i + 2
        get = {k: (rec.get(c) if c else None) for k, c in cols.items()}
        code = str(get["service_code"] or "").strip()
        if code not in hotline.services.services:
            problems.append(f"line {line}: unknown service_code {code!r}")
            continue
        try:
            requested = _when(get["requested_at"], f"line {line}")
            handled = _when(get["handled_at"], f"line {line}")
            lat = float(str(_text(get["lat"]))) if _text(get["lat"]) else None
            lon = float(str(_text(get["lon"]))) if _text(get["lon"]) else None
        except (InputError, ValueError) as exc:
            problems.append(str(exc) if isinstance(exc, InputError) else f"line {line}: {exc}")
            continue
        if requested is None:
            problems.append(f"line {line}: requested_at is empty")
            continue
        if (lat is not None and not (-90 <= lat <= 90)) or (
            lon is not None and not (-180 <= lon <= 180)
        ):
            problems.append(f"line {line}: coordinates out of range")
            continue
        resolved_text = str(get["resolved"] or "").strip().lower()
        resolved = True if resolved_text in _YES else False if resolved_text in _NO else None
        rows.append({**get, "service_code": code, "requested": requested, "handled": handled,
                     "lat": lat, "lon": lon, "resolved": resolved, "line": line})  # fmt: skip
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError(
            f"{path}: {len(problems)} rows are unusable: {'; '.join(problems[:5])}{more}"
        )
    at = now()
    for r in rows:
        service = hotline.services.services[r["service_code"]]
        units = (
            hotline.city.locate(r["lon"], r["lat"])
            if r["lat"] is not None and r["lon"] is not None
            else {}
        )
        point = (r["lon"], r["lat"]) if r["lat"] is not None and r["lon"] is not None else None
        route = hotline.routing.route(service, units, point)
        due = hotline.deadlines.due(service.urgency, r["requested"])
        handled = r["handled"]
        state = (
            "closed_resolved"
            if handled and r["resolved"] is not False
            else "closed_unresolved"
            if handled
            else "dispatched"
        )
        t = Ticket(
            service_code=service.service_code, state=state, description=_text(r["description"]),
            lat=r["lat"], lon=r["lon"], address=_text(r["address"]),
            community_id=units.get("community"), subdistrict_id=units.get("subdistrict"),
            city_id=units.get("city"), outside_city=r["lat"] is not None and units.get("city") is None,
            department=_text(r["department"]) or route.department,
            routing_rule="imported" if _text(r["department"]) else route.rule, urgency=service.urgency,
            channel="import", attributes="{}", requested_at=r["requested"], updated_at=handled or r["requested"],
            due_sign=due.sign, due_contact=due.contact, due_resolve=due.resolve, handled_at=handled,
            closed_at=handled,
        )  # fmt: skip
        t.near_x, t.near_y = hotline.near_square(service, r["lon"], r["lat"])
        session.add(t)
        session.flush()
        note = json.dumps(
            {"file": path.name, "line": r["line"], "external_id": _text(r["external_id"])},
            ensure_ascii=False,
        )
        session.add(Transition(ticket_id=t.id, action="import", from_state=None, to_state=state, actor="import",
                               role="admin", at=at, reason=note, department=t.department))  # fmt: skip
        if handled is not None:
            session.add(Transition(ticket_id=t.id, action="handle", from_state="dispatched", to_state=state,
                                   actor="import", role="admin", at=handled, reason="from the imported table",
                                   department=t.department))  # fmt: skip
        if r["resolved"] is not None or _text(r["satisfaction"]):
            session.add(Callback(ticket_id=t.id, at=handled or r["requested"], reached=True,
                                 resolved=r["resolved"], satisfaction=_text(r["satisfaction"])))  # fmt: skip
    return len(rows)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def tickets_frame(
    session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> pd.DataFrame:
    """The tickets as a table: public fields, units, department, deadlines and state (never
    the reporters' data)."""
    stmt = select(Ticket).order_by(Ticket.id)
    if since is not None:
        stmt = stmt.where(Ticket.requested_at >= since)
    if until is not None:
        stmt = stmt.where(Ticket.requested_at < until)
    cols = ["id", "service_code", "state", "description", "lat", "lon", "address", "community_id",
            "subdistrict_id", "city_id", "outside_city", "department", "routing_rule", "urgency",
            "channel", "requested_at", "updated_at", "due_sign", "due_contact", "due_resolve",
            "signed_at", "handled_at", "closed_at", "likely_duplicate_of", "duplicate_of"]  # fmt: skip
    return pd.DataFrame(
        [{c: getattr(t, c) for c in cols} for t in session.scalars(stmt)], columns=cols
    )


def export_tickets(frame: pd.DataFrame, out: Path) -> None:
    """Write the tickets table as CSV, XLSX or GeoPackage (points, WGS84), by suffix."""
    from cityos.outputs import atomic_file, write_table

    suffix = out.suffix.lower()
    if suffix == ".csv":
        write_table(frame, out)
        return
    with atomic_file(out) as tmp:
        if suffix == ".xlsx":
            frame.to_excel(tmp, index=False, engine="openpyxl")
        else:
            import geopandas as gpd

            geo = gpd.GeoDataFrame(
                frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326"
            )
            geo.to_file(tmp, driver="GPKG", layer="tickets", engine="pyogrio")
