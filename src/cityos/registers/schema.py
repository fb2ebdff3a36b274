"""Register schemas as data (``registers/schemas/NAME.toml``): the columns of a city register —
Chinese and English headers, type, unit, allowed values, required or not — its key (a bundle
``building_id`` or a health-check ``unit_id``), whether the key is unique, which rows a
template is pre-filled with, and (read from the indicator systems, not stored) the indicators
each column feeds.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cityos.errors import ConfigError

__all__ = [
    "BUILTIN_REGISTERS",
    "COLUMN_TYPES",
    "Column",
    "Feeds",
    "RegisterSchema",
    "load_schema",
    "registers_of",
]

#: the registers whose schemas cityos ships
BUILTIN_REGISTERS = (
    "housing",
    "housing_safety",
    "community",
    "subdistrict",
    "city",
    "idle_property",
    "satisfaction",
)
#: a column's type: text, flag (是/否), number (with a unit, min, max), integer, code (one of
#: ``allowed``), date (ISO 8601, 2026-12-01)
COLUMN_TYPES = ("text", "flag", "number", "integer", "code", "date")
#: what a template pre-fills its rows with: the bundle's buildings, the units of a level, none
ROWS = ("buildings", "residential_buildings", "community", "subdistrict", "city", "none")


@dataclass(frozen=True)
class Feeds:
    """An indicator a column feeds: its system, number, id and names."""

    system: str
    no: int | None
    id: str
    name_zh: str


@dataclass(frozen=True)
class Column:
    """One column of a register."""

    name: str
    zh: str
    en: str
    type: str
    required: bool = False
    unit: str = ""
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] = ()
    note: str = ""

    @property
    def header(self) -> str:
        """The Chinese header a survey team sees, with the unit: ``闲置建筑面积（m²）``."""
        return f"{self.zh}（{self.unit}）" if self.unit else self.zh


@dataclass(frozen=True)
class RegisterSchema:
    """A register: its name, headers, key, whether the key is unique, rows to pre-fill."""

    name: str
    name_zh: str
    name_en: str
    key: str
    rows: str
    unique: bool
    note: str
    source: str
    columns: tuple[Column, ...]
    path: str = ""
    feeds: Mapping[str, tuple[Feeds, ...]] = field(default_factory=dict)
    #: the unit level a unit_id key names when the rows are not the units (a survey's)
    key_level: str = ""
    #: the register it stands in for (housing_safety → housing), and which of its columns each
    #: column of that register is read from when the names differ
    derives: str = ""
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _column(raw: Any, where: str, problems: list[str]) -> Column | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a [[column]] must be a table")
        return None
    name = raw.get("name")
    at = f"{where} column {name!r}"
    missing = [k for k in ("name", "zh", "en", "type") if not isinstance(raw.get(k), str)]
    if missing:
        problems.append(f"{at}: give {', '.join(missing)}")
        return None
    kind = raw["type"]
    if kind not in COLUMN_TYPES:
        problems.append(f"{at}: unknown type {kind!r}; use one of {', '.join(COLUMN_TYPES)}")
    allowed = raw.get("allowed", [])
    if kind == "code" and (not isinstance(allowed, list) or not allowed):
        problems.append(f"{at}: a code column lists its allowed values")
        allowed = []
    unknown = set(raw) - {
        "name",
        "zh",
        "en",
        "type",
        "required",
        "unit",
        "min",
        "max",
        "allowed",
        "note",
    }
    if unknown:
        problems.append(f"{at}: unknown keys {sorted(unknown)}")
    low, high = raw.get("min"), raw.get("max")
    if (low is not None or high is not None) and kind not in ("number", "integer"):
        problems.append(f"{at}: min and max apply to number and integer columns")
    return Column(
        name=str(name), zh=raw["zh"], en=raw["en"], type=kind,
        required=bool(raw.get("required", False)), unit=str(raw.get("unit", "")),
        min=None if low is None else float(low), max=None if high is None else float(high),
        allowed=tuple(str(a) for a in allowed), note=str(raw.get("note", "")),
    )  # fmt: skip


def schema_from_toml(text: str, where: str) -> RegisterSchema:
    """A schema from its TOML text.

    Raises
    ------
    ConfigError
        Not TOML, a missing field, an unknown type or rows value, a key not among the columns,
        repeated column names — every problem of the file in one message.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from exc
    problems: list[str] = []
    for k in ("name", "name_zh", "name_en", "key", "rows", "source"):
        if not isinstance(raw.get(k), str):
            problems.append(f"{where}: give {k}")
    if raw.get("rows") not in ROWS:
        problems.append(f"{where}: rows must be one of {', '.join(ROWS)}")
    columns = [c for i, r in enumerate(raw.get("column", []))
               if (c := _column(r, f"{where} [[column]] {i + 1}", problems)) is not None]  # fmt: skip
    names = [c.name for c in columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"{where}: columns named twice: {', '.join(repeated)}")
    if isinstance(raw.get("key"), str) and raw["key"] not in names:
        problems.append(f"{where}: the key {raw['key']!r} is not one of the columns")
    derived = {str(k): tuple(str(c) for c in v) for k, v in raw.get("derived", {}).items()}
    strange = sorted({c for cols in derived.values() for c in cols} - set(names))
    if strange:
        problems.append(f"{where}: derived names columns it does not have: {', '.join(strange)}")
    if problems:
        raise ConfigError("; ".join(problems))
    return RegisterSchema(
        name=raw["name"], name_zh=raw["name_zh"], name_en=raw["name_en"], key=raw["key"],
        rows=raw["rows"], unique=bool(raw.get("unique", True)), note=str(raw.get("note", "")),
        source=raw["source"], columns=tuple(columns), path=where,
        key_level=str(raw.get("key_level", "")), derives=str(raw.get("derives", "")),
        derived=derived,
    )  # fmt: skip


def load_schema(name_or_path: str | Path, systems: Iterable[str] | None = None) -> RegisterSchema:
    """A built-in schema by name (``housing``) or a schema file, with the indicators each column
    feeds in ``systems`` (default: every built-in system).

    Raises
    ------
    ConfigError
        No such register or file, or a file that is not a valid schema.
    """
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_REGISTERS:
        where = f"registers/schemas/{name_or_path}.toml"
        text = (
            resources.files("cityos.registers")
            .joinpath("schemas", f"{name_or_path}.toml")
            .read_text("utf-8")
        )
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such register schema; give a TOML file or one of "
                              f"{', '.join(BUILTIN_REGISTERS)}")  # fmt: skip
        where, text = str(path), path.read_text("utf-8")
    schema = schema_from_toml(text, where)
    chosen = None if systems is None else tuple(systems)
    feeds = dict(_feeds(schema.name, chosen))
    if schema.derives:  # it stands in for another register (housing_safety → housing)
        names = {c.name for c in schema.columns}
        for target, found in _feeds(schema.derives, chosen).items():
            for col in [target] if target in names else schema.derived.get(target, ()):
                feeds[col] = (*feeds.get(col, ()), *found)
    unknown = sorted(set(feeds) - {c.name for c in schema.columns})
    if unknown:
        raise ConfigError(
            f"{where}: indicators read columns it does not have: {', '.join(unknown)}"
        )
    return dataclasses.replace(schema, feeds=feeds)


@functools.lru_cache(maxsize=64)
def _feeds(register: str, systems: tuple[str, ...] | None) -> Mapping[str, tuple[Feeds, ...]]:
    """The indicators of ``systems`` (default: every built-in one) that read each column of
    ``register`` (cached: the systems are read once per process)."""
    from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS, OPTIONAL_SYSTEMS, load_system

    out: dict[str, list[Feeds]] = {}
    for name in systems if systems is not None else (*BUILTIN_SYSTEMS, *OPTIONAL_SYSTEMS):
        system = load_system(name)
        for ind in system.indicators:
            if ind.params.get("register") != register:
                continue
            for key in ("column", "numerator", "denominator"):
                col = ind.params.get(key)
                if isinstance(col, str) and col != "residents":
                    out.setdefault(col, []).append(Feeds(system.id, ind.no, ind.id, ind.name_zh))
    return MappingProxyType({k: tuple(v) for k, v in out.items()})


def registers_of(systems: Iterable[str]) -> list[str]:
    """The built-in registers the indicators of ``systems`` read (with ``housing_safety``, which
    gives the ``housing`` flags), in :data:`BUILTIN_REGISTERS` order."""
    from cityos.healthcheck.catalogue import load_system

    used = {str(ind.params["register"]) for name in systems
            for ind in load_system(name).indicators if "register" in ind.params}  # fmt: skip
    if used & {"housing", "housing_status"}:
        used.add("housing_safety")  # the full-lifecycle register these come from
    return [r for r in BUILTIN_REGISTERS if r in used]
