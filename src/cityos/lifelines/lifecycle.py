"""An alert's lifecycle as an explicit table of allowed steps, and the time limits of each level
(``lifelines/limits.toml``).

detected → triaged (研判: confirmed, or closed as a false alarm or a device fault) → notified
(the owner unit told) → dispatched → on site → handled → feedback (反馈) → closed → archived
(归档). Each step is an audit row, timed from the alert's raising against its level's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cityos.errors import ConfigError
from cityos.lifelines.rules import LEVELS
from cityos.tomlfiles import read_with_defaults

__all__ = ["ALERT_ACTIONS", "ALERT_STATES", "Limits", "allowed", "load_limits"]

ALERT_STATES = ("detected", "confirmed", "notified", "dispatched", "on_site", "handled",
                "feedback", "closed", "archived")  # fmt: skip
OPS_ROLES = frozenset({"dispatcher", "admin"})


@dataclass(frozen=True)
class Step:
    name: str
    sources: frozenset[str]
    target: str
    description: str


def _s(name: str, sources: set[str], target: str, description: str) -> Step:
    return Step(name, frozenset(sources), target, description)


ALERT_ACTIONS: dict[str, Step] = {
    s.name: s
    for s in (
        _s("confirm", {"detected"}, "confirmed", "研判: the hazard is real"),
        _s("false_alarm", {"detected"}, "closed", "研判: no hazard (a false alarm)"),
        _s("device_fault", {"detected"}, "closed", "研判: the device is at fault, not the place"),
        _s("notify", {"confirmed"}, "notified", "the owner unit is told (CAP message)"),
        _s("dispatch", {"notified"}, "dispatched", "a crew is sent"),
        _s("arrive", {"dispatched"}, "on_site", "the crew is on site"),
        _s("handle", {"on_site"}, "handled", "made safe"),
        _s("feedback", {"handled"}, "feedback", "反馈: the owner reports back"),
        _s("close", {"feedback", "handled"}, "closed", "closed by the operations centre"),
        _s("archive", {"closed"}, "archived", "归档: reviewed and filed"),
    )
}


def allowed(state: str) -> list[str]:
    """The steps allowed from ``state``."""
    return [a.name for a in ALERT_ACTIONS.values() if state in a.sources]


@dataclass(frozen=True)
class Limits:
    """Per level, the seconds allowed from raising to each state (e.g. red: confirmed in 300)."""

    seconds: dict[str, dict[str, float]]
    source: str

    def due(self, level: str, state: str) -> float | None:
        return self.seconds.get(level, {}).get(state)


def load_limits(path: str | Path | None = None) -> Limits:
    """The built-in limits with a city's file merged over them.

    Raises
    ------
    ConfigError
        An unknown level or state, a limit that is not a positive number of minutes.
    """
    raw, where = read_with_defaults("cityos.lifelines", "limits.toml", path, what="alert limits")
    problems: list[str] = []
    out: dict[str, dict[str, float]] = {}
    for level, states in raw.get("minutes", {}).items():
        if level not in LEVELS:
            problems.append(f"{where}: [minutes.{level}] is not a level; use {', '.join(LEVELS)}")
            continue
        for state, minutes in states.items():
            if state not in ALERT_STATES:
                problems.append(
                    f"{where}: minutes.{level}.{state}: not a state; use {', '.join(ALERT_STATES)}"
                )
            elif not (isinstance(minutes, int | float) and minutes > 0):
                problems.append(f"{where}: minutes.{level}.{state} must be a positive number")
            else:
                out.setdefault(level, {})[state] = 60.0 * float(minutes)
    if problems:
        raise ConfigError("; ".join(problems))
    return Limits(out, where)
