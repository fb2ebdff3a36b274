"""Deadlines of hotline tickets: per urgency class, limits for sign-off (签收), first contact
(先行联系) and resolution (办结), in calendar or working days with a holiday calendar, from
``ops/deadlines.toml`` (Beijing's 2 h / 24 h / 7 d / 15 d [P])."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityos.errors import ConfigError
from cityos.tomlfiles import read_with_defaults

__all__ = ["Deadlines", "Due", "Urgency", "add_working_days", "load_deadlines", "parse_datetime"]


@dataclass(frozen=True)
class Urgency:
    """One urgency class: limits in hours (sign-off, contact) and hours or days (resolution)."""

    name: str
    days: str  # "calendar" | "working"
    sign_hours: float
    contact_hours: float
    resolve_hours: float | None
    resolve_days: float | None
    source: str


@dataclass(frozen=True)
class Due:
    """When a ticket is due: signed, contacted, resolved."""

    sign: dt.datetime
    contact: dt.datetime
    resolve: dt.datetime


@dataclass(frozen=True)
class Deadlines:
    """The urgency classes, the holiday calendar and where they came from."""

    urgencies: Mapping[str, Urgency]
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    source: str

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def due(self, urgency: str, start: dt.datetime) -> Due:
        """The deadlines of a ticket of class ``urgency`` whose clock starts at ``start``."""
        u = self.urgencies[urgency]
        if u.resolve_hours is not None:
            resolve = start + dt.timedelta(hours=u.resolve_hours)
        elif u.days == "working":
            resolve = add_working_days(start, float(u.resolve_days or 0), self)
        else:
            resolve = start + dt.timedelta(days=float(u.resolve_days or 0))
        return Due(
            sign=start + dt.timedelta(hours=u.sign_hours),
            contact=start + dt.timedelta(hours=u.contact_hours),
            resolve=resolve,
        )


def parse_datetime(text: str, name: str) -> dt.datetime:
    """An ISO 8601 date or date-time (``Z``, offsets and fractions accepted) as naive UTC.

    Raises
    ------
    ValueError
        With a message naming the parameter.
    """
    value = text.strip().replace(" ", "+") if "T" in text else text.strip()
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"{name} {text!r} is not an ISO 8601 date-time (e.g. 2026-11-01T00:00:00Z)"
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def add_working_days(start: dt.datetime, days: float, calendar: Deadlines) -> dt.datetime:
    """``start`` plus ``days`` working days (counting from the day after ``start``, as the
    bureau rules do: "13 working days from the day after receipt"), same time of day; a
    fraction of a day adds that share of 24 h on the last day."""
    whole = int(days)
    day = start
    while whole > 0:
        day += dt.timedelta(days=1)
        if calendar.is_working_day(day.date()):
            whole -= 1
    return day + dt.timedelta(days=days - int(days))


def _dates(values: Any, where: str) -> frozenset[dt.date]:
    try:
        return frozenset(dt.date.fromisoformat(str(v)) for v in values)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}; write dates as YYYY-MM-DD") from exc


def load_deadlines(path: str | Path | None = None) -> Deadlines:
    """The built-in deadlines (``ops/deadlines.toml``) with a city's file merged over them.

    Raises
    ------
    ConfigError
        A class without a resolution limit, negative limits, bad dates, unknown day counting.
    """
    raw, where = read_with_defaults("cityos.ops", "deadlines.toml", path, what="deadlines")
    urgencies: dict[str, Urgency] = {}
    for name, u in raw.get("urgency", {}).items():
        w = f"{where}: urgency {name}"
        days = str(u.get("days", "calendar"))
        if days not in ("calendar", "working"):
            raise ConfigError(f"{w}: days must be 'calendar' or 'working'")
        hours, ndays = u.get("resolve_hours"), u.get("resolve_days")
        if (hours is None) == (ndays is None):
            raise ConfigError(f"{w}: give one of resolve_hours or resolve_days")
        limits = [u.get("sign_hours", 0), u.get("contact_hours", 0), hours or 0, ndays or 0]
        if any(not isinstance(v, int | float) or v < 0 for v in limits):
            raise ConfigError(f"{w}: limits must be numbers >= 0")
        urgencies[name] = Urgency(
            name=name, days=days, sign_hours=float(u.get("sign_hours", 0)),
            contact_hours=float(u.get("contact_hours", 0)),
            resolve_hours=None if hours is None else float(hours),
            resolve_days=None if ndays is None else float(ndays), source=str(u.get("source", "")),
        )  # fmt: skip
    if not urgencies:
        raise ConfigError(f"{where}: no [urgency.NAME] classes")
    holidays = _dates(raw.get("holidays", []), where)
    if raw.get("holidays_file"):
        # one date per line (YYYY-MM-DD; '#' starts a comment), beside the city's deadlines file
        base = Path(path).parent if path is not None else Path.cwd()
        file = base / str(raw["holidays_file"])
        if not file.is_file():
            raise ConfigError(f"{where}: holidays_file {file} not found")
        lines = [ln.split("#", 1)[0].strip() for ln in file.read_text("utf-8").splitlines()]
        holidays |= _dates([ln for ln in lines if ln], str(file))
    return Deadlines(urgencies, holidays, _dates(raw.get("workdays", []), where), where)
