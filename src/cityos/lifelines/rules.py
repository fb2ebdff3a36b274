"""Monitoring rules as data (``lifelines/rules.toml``, or a city's own file that replaces it):
loaded and checked (every problem at once), and bound to datastreams by observed property and
unit of measurement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityos.errors import ConfigError
from cityos.tomlfiles import read_with_defaults

__all__ = [
    "KINDS",
    "LEVELS",
    "LEVEL_RANK",
    "Binding",
    "Correlation",
    "Rule",
    "RuleSet",
    "bind",
    "load_rules",
]

#: the four warning levels, highest first (突发事件应对法 art. 42)
LEVELS = ("red", "orange", "yellow", "blue")
#: a level's rank: red 4 … blue 1 (higher is more severe)
LEVEL_RANK = {level: len(LEVELS) - i for i, level in enumerate(LEVELS)}
KINDS = ("threshold", "rate_of_change", "stale", "flatline", "out_of_range")
#: rules on the readings of one property (the others watch every datastream)
_PER_PROPERTY = ("threshold", "rate_of_change")


@dataclass(frozen=True)
class Rule:
    """One rule; ``levels``: level → threshold (for rate of change: the change, in percent
    when ``percent``)."""

    id: str
    domain: str
    kind: str
    event: str
    source: str
    prop: str = ""  # the ObservedProperty name (``property`` in the file)
    unit: str = ""
    levels: dict[str, float] = field(default_factory=dict)
    direction: str = "above"
    hysteresis: float = 0.0
    clear_readings: int = 1
    min_duration_s: float = 0.0
    window_s: float = 0.0
    percent: bool = False
    intervals: float = 3.0
    duration_s: float = 86400.0
    level: str = "blue"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: citizen corroboration: hotline services, radius (m), window (h)
    corroborate: tuple[tuple[str, ...], float, float] | None = None
    #: correlation with another rule on a nearby datastream (rule, property, radius, window,
    #: level, level and event when no such datastream is near)
    correlate: Correlation | None = None
    #: context: (property, unit, at least, radius m, window s) of readings that raise it a level
    context: tuple[str, str, float, float, float] | None = None

    @property
    def hazard(self) -> bool:
        """A hazard rule (the others are about the device and its data)."""
        return self.kind in _PER_PROPERTY


@dataclass(frozen=True)
class Correlation:
    """An alert of ``rule`` on a datastream of ``property`` within ``radius_m`` and ``window_s``
    sets ``level``; no datastream of ``property`` within ``radius_m`` sets ``alone_level`` and
    ``alone_event``."""

    rule: str
    property: str
    radius_m: float
    window_s: float
    level: str
    alone_level: str
    alone_event: str


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str
    source: str
    #: domain → the hotline service of the work order a dispatched alert opens
    work_orders: dict[str, str] = field(default_factory=dict)

    def get(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def _number(raw: Any) -> bool:
    return isinstance(raw, int | float) and not isinstance(raw, bool)


def _rule(raw: Mapping[str, Any], where: str, problems: list[str]) -> Rule | None:
    rid = str(raw.get("id", "")) or "(no id)"
    at = f"{where}: rule {rid}"
    kind = raw.get("kind")
    if kind not in KINDS:
        problems.append(f"{at}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        return None
    for need in ("id", "domain", "event", "source"):
        if not raw.get(need):
            problems.append(f"{at}: {need} is required")
    kw: dict[str, Any] = {}
    if kind in _PER_PROPERTY:
        if not raw.get("property") or not raw.get("unit"):
            problems.append(f'{at}: a {kind} rule needs a property and its unit (e.g. unit = "cm")')
        levels = raw.get("levels" if kind == "threshold" else "change_percent", raw.get("change"))
        if not isinstance(levels, dict) or not levels:
            what = "levels" if kind == "threshold" else "change_percent (or change)"
            problems.append(f"{at}: {what} = {{ LEVEL = number, … }} is required")
            levels = {}
        bad = [k for k in levels if k not in LEVELS] + [
            k for k, v in levels.items() if not _number(v)
        ]
        if bad:
            problems.append(
                f"{at}: levels must be red/orange/yellow/blue = numbers, not {sorted(set(bad))}"
            )
        kw["levels"] = {k: float(v) for k, v in levels.items() if k in LEVELS and _number(v)}
        kw["percent"] = kind == "rate_of_change" and "change_percent" in raw
        if kind == "rate_of_change" and not (_number(raw.get("window_s")) and raw["window_s"] > 0):
            problems.append(f"{at}: window_s (seconds, > 0) is required")
    if raw.get("direction", "above") not in ("above", "below"):
        problems.append(f"{at}: direction must be above or below")
    if raw.get("level", "blue") not in LEVELS:
        problems.append(f"{at}: level must be one of {', '.join(LEVELS)}")
    ranges: dict[str, tuple[float, float]] = {}
    for key, pair in (raw.get("ranges") or {}).items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair)):
            problems.append(f"{at}: ranges.{key} must be [low, high]")
            continue
        ranges[str(key)] = (float(pair[0]), float(pair[1]))
    for name in ("hysteresis", "min_duration_s", "window_s", "intervals", "duration_s"):
        if name in raw and not (_number(raw[name]) and raw[name] >= 0):
            problems.append(f"{at}: {name} must be a number ≥ 0")
    simple: dict[str, Any] = {k: str(raw[k]) for k in ("unit", "direction", "level") if k in raw}
    if "property" in raw:
        simple["prop"] = str(raw["property"])
    nums: dict[str, Any] = {k: float(raw[k]) for k in ("hysteresis", "min_duration_s", "window_s", "intervals", "duration_s")
            if _number(raw.get(k))}  # fmt: skip
    corroborate = None
    if "corroborate" in raw:
        c = raw["corroborate"]
        services = c.get("services") if isinstance(c, dict) else None
        if (not isinstance(services, list) or not services or not _number(c.get("radius_m"))
                or not _number(c.get("window_h"))):  # fmt: skip
            problems.append(
                f"{at}: corroborate = {{ services = [...], radius_m = N, window_h = N }}"
            )
        else:
            corroborate = (tuple(map(str, services)), float(c["radius_m"]), float(c["window_h"]))
    correlate = None
    if "correlate" in raw:
        c = raw["correlate"] if isinstance(raw["correlate"], dict) else {}
        try:
            correlate = Correlation(str(c["rule"]), str(c["property"]), float(c["radius_m"]), float(c["window_s"]),
                                    str(c["level"]), str(c["alone_level"]), str(c["alone_event"]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            problems.append(
                f"{at}: correlate needs rule, property, radius_m, window_s, level, alone_level, alone_event"
            )
        if correlate and not {correlate.level, correlate.alone_level} <= set(LEVELS):
            problems.append(f"{at}: correlate levels must be one of {', '.join(LEVELS)}")
    context = None
    if "context" in raw:
        c = raw["context"] if isinstance(raw["context"], dict) else {}
        try:
            context = (str(c["property"]), str(c["unit"]), float(c["at_least"]), float(c["radius_m"]),
                       float(c["window_s"]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            problems.append(f"{at}: context needs property, unit, at_least, radius_m, window_s")
    clear = raw.get("clear_readings", 1)
    if not (isinstance(clear, int) and clear >= 1):
        problems.append(f"{at}: clear_readings must be a whole number ≥ 1")
        clear = 1
    return Rule(id=rid, domain=str(raw.get("domain", "")), kind=str(kind), event=str(raw.get("event", "")),
                source=str(raw.get("source", "")), clear_readings=clear, ranges=ranges,
                corroborate=corroborate, correlate=correlate, context=context,
                **simple, **nums, **kw)  # fmt: skip


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The built-in rules, or a city's own file instead of them.

    Raises
    ------
    ConfigError
        An unknown kind, a threshold without a unit, levels that are not the four colours,
        repeated ids: every problem of the file in one message.
    """
    raw, where = read_with_defaults(
        "cityos.lifelines", "rules.toml", path, what="rules", merge_own=False
    )
    problems: list[str] = []
    rules = [r for item in raw.get("rule", []) if (r := _rule(item, where, problems)) is not None]
    ids = [r.id for r in rules]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"{where}: repeated rule ids {repeated}")
    if problems:
        raise ConfigError("; ".join(problems))
    orders = raw.get("work_orders", {})
    if not isinstance(orders, dict) or not all(isinstance(v, str) for v in orders.values()):
        raise ConfigError(f"{where}: [work_orders] maps a domain to a hotline service_code")
    return RuleSet(
        tuple(rules), str(raw.get("version", "")), where, {str(k): v for k, v in orders.items()}
    )


@dataclass(frozen=True)
class Binding:
    """What watches one datastream: its hazard rules, or why none does."""

    datastream_id: int
    rules: tuple[Rule, ...]
    unwatched: str = ""


def bind(rules: RuleSet, streams: Iterable[tuple[int, str, str]]) -> list[Binding]:
    """For each (datastream id, observed property name, unit symbol), the hazard rules of that
    property in that unit; a known property in another unit, or an unknown property, is
    unwatched with the reason."""
    out = []
    for sid, prop, unit in streams:
        same = [r for r in rules.rules if r.hazard and r.prop.lower() == prop.lower()]
        matched = tuple(r for r in same if r.unit == unit)
        if matched:
            out.append(Binding(sid, matched))
        elif same:
            units = sorted({r.unit for r in same})
            out.append(
                Binding(sid, (), f"{prop} in {unit!r}: the rules watch it in {', '.join(units)}")
            )
        else:
            out.append(Binding(sid, (), f"no rule watches {prop!r}"))
    return out
