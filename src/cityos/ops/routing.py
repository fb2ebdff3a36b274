"""Routing of hotline tickets (派单) as data: ordered rules from service × place to a
department, the first match wins, with a fallback (区兜底); ``ops/routing.toml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cityos.errors import ConfigError
from cityos.ops.catalogue import Service
from cityos.tomlfiles import read_with_defaults

__all__ = ["Route", "Routing", "RoutingRule", "load_routing"]

LEVELS = ("community", "subdistrict", "city")


@dataclass(frozen=True)
class RoutingRule:
    """Services (empty: any), the units at ``level`` it covers (empty: anywhere), the
    department (a code, ``{service}``, ``{subdistrict}`` or ``{community}``)."""

    id: str
    services: frozenset[str]
    level: str
    units: frozenset[str]
    department: str


@dataclass(frozen=True)
class Route:
    """Where a ticket goes: the department, the rule that chose it, and whether it fell back."""

    department: str
    rule: str
    fallback: bool


@dataclass(frozen=True)
class Routing:
    """Ordered rules, the fallback department and where they came from."""

    rules: tuple[RoutingRule, ...]
    fallback: str
    source: str

    def route(self, service: Service, units: Mapping[str, str | None]) -> Route:
        """The first rule matching ``service`` and the ticket's ``units`` (unit id per level);
        the fallback when none matches or a template's unit is missing (outside every unit)."""
        for rule in self.rules:
            if rule.services and service.service_code not in rule.services:
                continue
            if rule.units and units.get(rule.level) not in rule.units:
                continue
            department = _fill(rule.department, service, units)
            if department is not None:
                return Route(department, rule.id, False)
        return Route(self.fallback, "fallback", True)


def _fill(template: str, service: Service, units: Mapping[str, str | None]) -> str | None:
    if template == "{service}":
        return (
            _fill(service.department, service, units) if service.department != "{service}" else None
        )
    if template.startswith("{") and template.endswith("}"):
        unit = units.get(template[1:-1])
        return f"{template[1:-1]}:{unit}" if unit else None
    return template or None


def load_routing(path: str | Path | None = None, *, services: Mapping[str, Service]) -> Routing:
    """The routing rules (built-in or a city's file, which replaces them), checked: known
    services and levels, a department on every rule, a fallback.

    Raises
    ------
    ConfigError
        Naming the file and the rule.
    """
    raw, where = read_with_defaults(
        "cityos.ops", "routing.toml", path, what="routing", merge_own=False
    )
    fallback = str(raw.get("fallback", ""))
    if not fallback:
        raise ConfigError(f"{where}: a fallback department is required (区兜底)")
    rules = []
    for k, r in enumerate(raw.get("rule", [])):
        rid = str(r.get("id", f"#{k + 1}"))
        unknown = set(r.get("services", [])) - set(services)
        if unknown:
            raise ConfigError(f"{where}: rule {rid}: unknown services {sorted(unknown)}")
        level = str(r.get("level", "subdistrict"))
        if level not in LEVELS:
            raise ConfigError(f"{where}: rule {rid}: level must be one of {', '.join(LEVELS)}")
        if not r.get("department"):
            raise ConfigError(f"{where}: rule {rid}: no department")
        rules.append(
            RoutingRule(rid, frozenset(r.get("services", [])), level,
                        frozenset(map(str, r.get("units", []))), str(r["department"]))
        )  # fmt: skip
    return Routing(tuple(rules), fallback, where)
