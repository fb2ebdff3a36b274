"""Routing of hotline tickets (派单) as data: ordered rules from service × place to a
department, the first match wins, with a fallback (区兜底); ``ops/routing.toml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityos.errors import ConfigError
from cityos.ops.catalogue import Service
from cityos.tomlfiles import read_with_defaults

__all__ = ["Areas", "Route", "Routing", "RoutingRule", "load_routing"]

LEVELS = ("community", "subdistrict", "city")


@dataclass(frozen=True)
class Areas:
    """A polygon layer of department areas (责任区): each polygon's ``department``."""

    geometries: Any
    departments: tuple[str, ...]
    tree: Any
    source: str

    @classmethod
    def read(cls, path: Path, where: str) -> Areas:
        import shapely

        from cityos.sources.files import read_layer

        frame = read_layer(path)
        if "department" not in frame:
            raise ConfigError(f"{where}: areas {path} has no 'department' column")
        geoms = frame.geometry.to_numpy()
        return cls(geoms, tuple(map(str, frame["department"])), shapely.STRtree(geoms), str(path))

    def department_at(self, lon: float, lat: float) -> str | None:
        import shapely

        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self.departments[int(min(hits))] if len(hits) else None


@dataclass(frozen=True)
class RoutingRule:
    """Services (empty: any), the place it covers — units at ``level`` (empty: anywhere) or a
    polygon layer of department areas — and the department (a code, ``{service}``,
    ``{subdistrict}``, ``{community}``, or ``{area}`` for the area's own department)."""

    id: str
    services: frozenset[str]
    level: str
    units: frozenset[str]
    department: str
    areas: Areas | None = None


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

    def route(
        self,
        service: Service,
        units: Mapping[str, str | None],
        point: tuple[float, float] | None = None,
    ) -> Route:
        """The first rule matching ``service``, the ticket's ``units`` (unit id per level) and
        ``point`` (lon, lat; for area rules); the fallback when none matches or a template's
        unit is missing (outside every unit)."""
        for rule in self.rules:
            if rule.services and service.service_code not in rule.services:
                continue
            if rule.units and units.get(rule.level) not in rule.units:
                continue
            if rule.areas is not None:
                area = rule.areas.department_at(*point) if point is not None else None
                if area is None:
                    continue
                if rule.department == "{area}":
                    return Route(area, rule.id, False)
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
        areas = None
        if r.get("areas"):
            base = Path(path).parent if path is not None else Path.cwd()
            areas = Areas.read(base / str(r["areas"]), f"{where}: rule {rid}")
        rules.append(
            RoutingRule(rid, frozenset(r.get("services", [])), level,
                        frozenset(map(str, r.get("units", []))), str(r["department"]), areas)
        )  # fmt: skip
    return Routing(tuple(rules), fallback, where)
