"""Indicator systems as versioned data: load and check the TOML catalogues.

A system file has a ``[system]`` table (id, version, names, source) and one ``[[indicator]]``
table per indicator with its id, Chinese and English names, level, dimension, unit, direction,
target and the source of the target, whether the threshold is confirmed, the data class, and a
``method`` with ``params`` (and optionally an open-data ``proxy``). The built-in systems live in
``cityos/healthcheck/systems``; a city adds its own (省自选, 城市特色) as a file of the same shape.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cityos.errors import ConfigError
from cityos.healthcheck.methods import METHODS as _IMPLEMENTED
from cityos.healthcheck.status import TARGET_OPS
from cityos.naming import unknown_names

__all__ = [
    "BUILTIN_SYSTEMS",
    "LEVELS",
    "METHODS",
    "OPTIONAL_SYSTEMS",
    "Indicator",
    "IndicatorSystem",
    "known_categories",
    "load_system",
    "system_from_toml",
]

#: the four levels of the 2024 system, building level first
LEVELS = ("housing", "community", "subdistrict", "city")

#: method name → (required params, optional params), derived from the engine's one table of
#: implementations (:data:`cityos.healthcheck.methods.METHODS`): a system can name only what is computed
METHODS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {name: (m.required, m.optional) for name, m in _IMPLEMENTED.items()}
)

_REQUIRED = (
    "id",
    "name_zh",
    "name_en",
    "level",
    "dimension",
    "unit",
    "direction",
    "method",
    "confirmed",
)
_DATA_CLASSES = {"O", "OP", "R", "F", "S", "T"}

BUILTIN_SYSTEMS = ("mohurd-2024", "complete-community", "sdg-11")
#: built-in systems that run only when asked for (they read registers of the operations service)
OPTIONAL_SYSTEMS = ("hotline", "lifelines", "satisfaction", "housing-safety")


@dataclass(frozen=True)
class Indicator:
    """One indicator of a system (see the module docstring for the fields)."""

    id: str
    name_zh: str
    name_en: str
    level: str
    dimension: str
    unit: str
    direction: str
    method: str
    params: Mapping[str, Any]
    confirmed: bool
    data: str = ""
    no: int | None = None
    target: float | None = None
    target_op: str | None = None
    target_source: str | None = None
    proxy: Mapping[str, Any] | None = None
    definition: str = ""


@dataclass(frozen=True)
class IndicatorSystem:
    """A versioned indicator system and where it was read from."""

    id: str
    version: str
    name_zh: str
    name_en: str
    source: str
    indicators: tuple[Indicator, ...]
    path: str = field(default="")

    def at_level(self, level: str) -> tuple[Indicator, ...]:
        return tuple(i for i in self.indicators if i.level == level)


def _check_method(method: str, params: Mapping[str, Any], where: str) -> None:
    if method not in METHODS:
        raise ConfigError(
            f"{where}: unknown method {method!r}; use one of {', '.join(sorted(METHODS))}"
        )
    required, optional = METHODS[method]
    missing = required - set(params)
    if missing:
        raise ConfigError(f"{where}: method {method!r} needs params {sorted(missing)}")
    extra = set(params) - required - optional
    if extra:
        raise ConfigError(f"{where}: method {method!r} does not take params {sorted(extra)}")


def _categories_named(params: Mapping[str, Any]) -> set[str]:
    """Every facility category a method's params name (``categories``, and each item's)."""
    names = {str(c) for c in params.get("categories", [])}
    for item in params.get("items", []):
        if isinstance(item, Mapping):
            names |= {str(c) for c in item.get("categories", [])}
    return {n.split(">=", 1)[0].strip() for n in names}


def known_categories() -> frozenset[str]:
    """The facility categories of the built-in rules table, and ``green_space``."""
    from cityos.classify import FacilityRules

    return frozenset(FacilityRules.load(None).categories) | {"green_space"}


def _check_target(raw: Mapping[str, Any], where: str) -> None:
    target = raw.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise ConfigError(
            f"{where}: target {target!r} is not a number; write it bare, e.g. target = 90 "
            "(the unit is the indicator's 'unit')"
        )
    op = raw.get("target_op")
    if op is not None and op not in TARGET_OPS:
        raise ConfigError(
            f"{where}: target_op {op!r} is not one of {', '.join(repr(o) for o in TARGET_OPS)}"
        )


def load_system(name_or_path: str | Path, *, categories: Iterable[str] = ()) -> IndicatorSystem:
    """Load a built-in system by id (``mohurd-2024``) or a city's own TOML file, and check it.

    Raises
    ------
    ConfigError
        Naming the file, the indicator and the field that is wrong.
    """
    text: str
    if isinstance(name_or_path, str) and name_or_path in (*BUILTIN_SYSTEMS, *OPTIONAL_SYSTEMS):
        where = f"built-in system {name_or_path}"
        text = (
            resources.files("cityos.healthcheck.systems")
            .joinpath(f"{name_or_path}.toml")
            .read_text("utf-8")
        )
    else:
        path = Path(name_or_path)
        where = str(path)
        if not path.is_file():
            raise ConfigError(
                f"{path}: no such indicator system; give a TOML file or one of {', '.join((*BUILTIN_SYSTEMS, *OPTIONAL_SYSTEMS))}"
            )
        text = path.read_text("utf-8")
    return system_from_toml(text, where, categories=categories)


def system_from_toml(text: str, where: str, *, categories: Iterable[str] = ()) -> IndicatorSystem:
    """Parse and check an indicator system from TOML text (``where`` names it in errors and
    becomes the system's ``path``). A facility category must be one of the built-in rules
    table's or of ``categories`` (e.g. a bundle's own); an unknown one is refused with the
    closest known name."""
    known = known_categories() | set(categories)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from exc
    head = data.get("system")
    if not isinstance(head, dict) or "id" not in head:
        raise ConfigError(f"{where}: missing [system] table with an id")
    indicators: list[Indicator] = []
    seen: set[str] = set()
    for k, raw in enumerate(data.get("indicator", [])):
        iid = raw.get("id", f"#{k + 1}")
        w = f"{where}: indicator {iid}"
        for key in _REQUIRED:
            if key not in raw:
                raise ConfigError(f"{w}: missing field '{key}'")
        if iid in seen:
            raise ConfigError(f"{w}: duplicate id")
        seen.add(iid)
        if raw["level"] not in LEVELS:
            raise ConfigError(f"{w}: level {raw['level']!r} is not one of {', '.join(LEVELS)}")
        if raw["direction"] not in ("higher", "lower"):
            raise ConfigError(f"{w}: direction must be 'higher' or 'lower'")
        if raw.get("data") and raw["data"].split("/")[0].split("(")[0].strip() not in _DATA_CLASSES:
            raise ConfigError(
                f"{w}: data class {raw['data']!r} unknown ({', '.join(sorted(_DATA_CLASSES))})"
            )
        params = raw.get("params", {})
        _check_method(raw["method"], params, w)
        proxy = raw.get("proxy")
        if proxy is not None:
            _check_method(
                proxy.get("method", ""),
                {k: v for k, v in proxy.items() if k != "method"},
                f"{w} proxy",
            )
        _check_target(raw, w)
        unknown = _categories_named(params) | (_categories_named(proxy) if proxy else set())
        unknown -= known
        if unknown:
            raise ConfigError(
                f"{w}: unknown facility categories {unknown_names(unknown, known)}; use the "
                "category ids of the facility rules (`cityos info` lists a bundle's)"
            )
        if "target" in raw and not raw.get("target_source"):
            raise ConfigError(f"{w}: a target needs its target_source")
        indicators.append(
            Indicator(
                id=str(iid),
                name_zh=raw["name_zh"],
                name_en=raw["name_en"],
                level=raw["level"],
                dimension=raw["dimension"],
                unit=raw["unit"],
                direction=raw["direction"],
                method=raw["method"],
                params=params,
                confirmed=bool(raw["confirmed"]),
                data=raw.get("data", ""),
                no=raw.get("no"),
                target=raw.get("target"),
                target_op=raw.get("target_op"),
                target_source=raw.get("target_source"),
                proxy=proxy,
                definition=raw.get("definition", ""),
            )
        )
    if not indicators:
        raise ConfigError(f"{where}: the system has no [[indicator]] entries")
    return IndicatorSystem(
        id=str(head["id"]), version=str(head.get("version", "")), name_zh=str(head.get("name_zh", "")),
        name_en=str(head.get("name_en", "")), source=str(head.get("source", "")),
        indicators=tuple(indicators), path=where,
    )  # fmt: skip
