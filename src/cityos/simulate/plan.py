"""The distributions a simulated month is drawn from (``simulate.toml``, a city's own file merged
over it), read and checked once: every problem of the file reported at once."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cityos.errors import ConfigError
from cityos.tomlfiles import read_with_defaults

__all__ = ["PLACES", "Delay", "Plan", "SensorKind", "load_plan"]

#: where a category's tickets happen
PLACES = ("residents", "facilities", "streets")


@dataclass(frozen=True)
class Delay:
    """A log-normal fraction of a limit: ``median × exp(sigma × Z)``, Z standard normal."""

    median: float
    sigma: float


@dataclass(frozen=True)
class SensorKind:
    """One kind of lifeline device: what it reads, how many, around which value, how often."""

    name: str
    property: str
    unit: str
    per_10000: float
    min: int
    base: float
    noise: float
    interval_s: float
    thing: str


@dataclass(frozen=True)
class Plan:
    """Everything ``simulate.toml`` says, checked."""

    per_1000_per_day: float
    hourly: tuple[float, ...]
    weekly: tuple[float, ...]
    #: service code → (share in percent, normalised to 100; place)
    categories: Mapping[str, tuple[float, str]]
    delays: Mapping[str, Delay]
    workflow: Mapping[str, Any]
    satisfaction: Mapping[str, float]
    sensors: Mapping[str, SensorKind]
    incidents: Mapping[str, int]
    open_after_h: float
    housing: Mapping[str, Any]
    source: str


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _share(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100


def load_plan(path: str | os.PathLike[str] | None = None) -> Plan:
    """The built-in plan, or a city's file merged over it.

    Raises
    ------
    ConfigError
        The file is missing or not TOML, or values are out of range (all named at once).
    """
    raw, where = read_with_defaults(
        "cityos.simulate", "simulate.toml", path, what="simulation plan"
    )
    problems: list[str] = []
    arr = raw["arrivals"]
    if not _positive(arr.get("per_1000_residents_per_day")):
        problems.append("arrivals.per_1000_residents_per_day must be a positive number")
    for name, n in (("hourly", 24), ("weekly", 7)):
        w = arr.get(name)
        if not (isinstance(w, list) and len(w) == n and all(_positive(x) for x in w)):
            problems.append(f"arrivals.{name} must be {n} positive weights")
    cats: dict[str, tuple[float, str]] = {}
    for code, c in raw.get("categories", {}).items():
        if not _positive(c.get("share")) or c.get("place") not in PLACES:
            problems.append(
                f"categories.{code}: give a positive share and place one of {', '.join(PLACES)}"
            )
            continue
        cats[code] = (float(c["share"]), str(c["place"]))
    if not cats:
        problems.append("categories: give at least one service")
    wf = raw["workflow"]
    delays = {}
    for step in ("sign", "contact", "handle"):
        d = wf.get(step, {})
        if not (_positive(d.get("median")) and _positive(d.get("sigma"))):
            problems.append(f"workflow.{step} needs a positive median and sigma")
        else:
            delays[step] = Delay(float(d["median"]), float(d["sigma"]))
    for key in ("return_share", "return_upheld_share", "extension_share", "extension_granted_share",
                "merge_flagged_share", "cancel_share", "callback_reached_share", "resolved_share",
                "reissue_share"):  # fmt: skip
        if not _share(wf.get(key)):
            problems.append(f"workflow.{key} must be a percentage (0–100)")
    hours = wf.get("callback_hours")
    if not (isinstance(hours, list) and len(hours) == 2 and 0 <= hours[0] < hours[1] <= 24):
        problems.append("workflow.callback_hours must be [first, last) hours of the day")
    sat = wf.get("satisfaction", {})
    if not sat or not all(_share(v) for v in sat.values()):
        problems.append("workflow.satisfaction: give each answer a percentage")
    sensors = {}
    for name, s in raw["sensors"].items():
        try:
            sensors[name] = SensorKind(name, str(s["property"]), str(s["unit"]),
                                       float(s["per_10000"]), int(s["min"]), float(s["base"]),
                                       float(s["noise"]), float(s["interval_s"]), str(s["thing"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"sensors.{name}: {exc}; give property, unit, per_10000, min, base, "
                            "noise, interval_s and thing")  # fmt: skip
            continue
        if sensors[name].interval_s <= 0:
            problems.append(f"sensors.{name}.interval_s must be positive")
    inc = raw["incidents"]
    counts = {k: int(v) for k, v in inc.items() if isinstance(v, int) and not isinstance(v, bool)}
    house = raw["housing"]
    for key in ("inspected_share", "appraised_share"):
        if not _share(house.get(key)):
            problems.append(f"housing.{key} must be a percentage (0–100)")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    total = sum(s for s, _ in cats.values())
    return Plan(
        per_1000_per_day=float(arr["per_1000_residents_per_day"]),
        hourly=tuple(float(x) for x in arr["hourly"]),
        weekly=tuple(float(x) for x in arr["weekly"]),
        categories={k: (100.0 * s / total, p) for k, (s, p) in cats.items()},
        delays=delays, workflow=wf, satisfaction={str(k): float(v) for k, v in sat.items()},
        sensors=sensors, incidents=counts, open_after_h=float(inc.get("open_after_h", 24)),
        housing=house, source=where,
    )  # fmt: skip
