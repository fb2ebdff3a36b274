"""Classification tables: which OSM tags make a walkable way, a residential building, a green
space, and which tags, names or Amap type paths make a facility of which category.

The tables are TOML data shipped in ``cityos/data`` (``facilities.toml``, ``osm.toml``); a city can
pass its own copy. Everything here is a pure function of the tags it is given.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from cityos.errors import ConfigError

__all__ = [
    "BuildingRules",
    "FacilityRule",
    "FacilityRules",
    "OsmTables",
    "TagCondition",
    "load_osm_tables",
    "parse_height",
    "parse_levels",
]


class Tags(Protocol):
    """Anything with ``get`` and ``in`` over string keys: a dict, or an osmium TagList."""

    def get(self, key: str, default: Any = ..., /) -> Any: ...

    def __contains__(self, key: object, /) -> bool: ...


def _read_toml(path: Path | None, default_name: str) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files("cityos.data").joinpath(default_name).read_text("utf-8")
            where = f"built-in {default_name}"
        else:
            text = Path(path).read_text("utf-8")
            where = str(path)
        return tomllib.loads(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: rules file not found; check the path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc}); fix the syntax") from exc


def _as_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: expected a string or a list of strings, got {value!r}")


@dataclass(frozen=True)
class TagCondition:
    """``key`` must be present with one of ``values`` ("*" any, "~regex" searched)."""

    key: str
    values: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    any_value: bool

    @classmethod
    def build(cls, key: str, raw: Any, where: str) -> TagCondition:
        values = _as_list(raw, f"{where}.{key}")
        try:
            patterns = tuple(re.compile(v[1:], re.I) for v in values if v.startswith("~"))
        except re.error as exc:
            raise ConfigError(f"{where}.{key}: bad regular expression ({exc})") from exc
        plain = frozenset(v for v in values if not v.startswith("~") and v != "*")
        return cls(key, plain, patterns, "*" in values)

    def matches(self, tags: Tags) -> bool:
        value = tags.get(self.key)
        if value is None:
            return False
        if self.any_value or value in self.values:
            return True
        return any(p.search(value) for p in self.patterns)


def _conditions(raw: Any, where: str) -> tuple[TagCondition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table of key = value(s)")
    return tuple(TagCondition.build(k, v, where) for k, v in raw.items())


def _regex(raw: Any, where: str) -> re.Pattern[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected a regular expression string")
    try:
        return re.compile(raw, re.I)
    except re.error as exc:
        raise ConfigError(f"{where}: bad regular expression ({exc})") from exc


@dataclass(frozen=True)
class FacilityRule:
    """One row of the facility rules table; see ``cityos/data/facilities.toml`` for semantics."""

    id: str
    category: str
    tags: tuple[TagCondition, ...] = ()
    not_tags: tuple[TagCondition, ...] = ()
    name: re.Pattern[str] | None = None
    not_name: re.Pattern[str] | None = None
    amap: tuple[str, ...] = ()
    unless: frozenset[str] = frozenset()

    @property
    def name_only(self) -> bool:
        return not self.tags and not self.amap

    def matches(self, tags: Tags | None, name: str | None, amap: Iterable[str]) -> bool:
        if self.tags and (tags is None or not all(c.matches(tags) for c in self.tags)):
            return False
        if self.amap and not any(t.startswith(p) for t in amap for p in self.amap):
            return False
        if self.name is not None and (not name or not self.name.search(name)):
            return False
        if self.not_name is not None and name and self.not_name.search(name):
            return False
        return not (tags is not None and any(c.matches(tags) for c in self.not_tags))


def _pattern_chars(patterns: list[str]) -> re.Pattern[str] | None:
    """One character class of every character in ``patterns`` (case-insensitive): a text
    with none of them matches no pattern, when every pattern matches only text made of its own
    characters (no ``.``, no escapes, no ``[...]`` classes, no match of the empty text); else
    None (the patterns must be tried)."""
    if not patterns or any(c in p for p in patterns for c in ".\\["):
        return None
    if any(re.search(p, "", re.I) for p in patterns):
        return None
    chars = sorted(set("".join(patterns)))
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]", re.I)


_RULE_KEYS = {"id", "category", "tags", "not_tags", "name", "not_name", "amap", "unless"}


@dataclass(frozen=True)
class FacilityRules:
    """The ordered facility rules and the category catalogue.

    Use :meth:`load` to read the built-in table or a city's own copy.
    """

    rules: tuple[FacilityRule, ...]
    categories: Mapping[str, Mapping[str, str]]
    name_rules_skip_keys: frozenset[str]
    source: str
    trigger_keys: frozenset[str] = field(default=frozenset())
    generic: frozenset[str] = field(default=frozenset())
    # indexes (rule positions) so that one feature is tested only against rules that can match:
    # by the first tag condition's key and value, or by key alone for "*" and "~regex" values
    by_key: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    by_key_value: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)
    amap_only: tuple[int, ...] = ()
    name_only: tuple[int, ...] = ()
    any_name: re.Pattern[str] | None = None
    # what a feature's categories can depend on: the keys any rule reads, and whether its
    # name matches any rule's name or not_name pattern (see memo_key)
    read_keys: frozenset[str] = frozenset()
    any_pattern: re.Pattern[str] | None = None
    pattern_chars: re.Pattern[str] | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> FacilityRules:
        """Read and check a facility rules TOML file (default: the built-in one)."""
        data = _read_toml(path, "facilities.toml")
        where = str(path) if path else "facilities.toml"
        cats = data.get("categories")
        if not isinstance(cats, dict) or not cats:
            raise ConfigError(f"{where}: missing [categories] table")
        for cid in cats:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", cid):
                raise ConfigError(f"{where}: category id {cid!r} must be snake_case")
        rules: list[FacilityRule] = []
        seen: set[str] = set()
        for i, raw in enumerate(data.get("rules", [])):
            w = f"{where}: rules[{i}]"
            extra = set(raw) - _RULE_KEYS
            if extra:
                raise ConfigError(
                    f"{w}: unknown field(s) {sorted(extra)}; allowed: {sorted(_RULE_KEYS)}"
                )
            if "id" not in raw or "category" not in raw:
                raise ConfigError(f"{w}: every rule needs `id` and `category`")
            rid, cat = str(raw["id"]), str(raw["category"])
            if rid in seen:
                raise ConfigError(f"{w}: duplicate rule id {rid!r}")
            seen.add(rid)
            unknown = {cat, *_as_list(raw.get("unless", []), w)} - set(cats)
            if unknown:
                raise ConfigError(
                    f"{w} ({rid}): unknown category {sorted(unknown)}; add it to [categories]"
                )
            rule = FacilityRule(
                id=rid,
                category=cat,
                tags=_conditions(raw.get("tags"), f"{w}.tags"),
                not_tags=_conditions(raw.get("not_tags"), f"{w}.not_tags"),
                name=_regex(raw.get("name"), f"{w}.name"),
                not_name=_regex(raw.get("not_name"), f"{w}.not_name"),
                amap=tuple(_as_list(raw.get("amap", []), f"{w}.amap")),
                unless=frozenset(_as_list(raw.get("unless", []), w)),
            )
            if not rule.tags and not rule.amap and rule.name is None:
                raise ConfigError(f"{w} ({rid}): a rule needs `tags`, `amap` or `name`")
            rules.append(rule)
        trigger = frozenset(c.key for r in rules for c in r.tags)
        skip = frozenset(_as_list(data.get("name_rules_skip_keys", []), where))
        generic = frozenset(
            c for c, meta in cats.items() if isinstance(meta, dict) and meta.get("generic")
        )
        by_key: dict[str, list[int]] = {}
        by_key_value: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(rules):
            if not r.tags:
                continue
            first = r.tags[0]
            by_key.setdefault(first.key, [])
            if first.any_value or first.patterns:
                by_key[first.key].append(i)
            for value in first.values:
                by_key_value.setdefault((first.key, value), []).append(i)
        name_only = tuple(i for i, r in enumerate(rules) if r.name_only)
        patterns = [p.pattern for i in name_only if (p := rules[i].name) is not None]
        every = [p.pattern for r in rules for p in (r.name, r.not_name) if p is not None]
        return cls(
            rules=tuple(rules),
            categories=cats,
            name_rules_skip_keys=skip,
            source=where,
            trigger_keys=trigger,
            generic=generic,
            by_key={k: tuple(v) for k, v in by_key.items()},
            by_key_value={k: tuple(v) for k, v in by_key_value.items()},
            amap_only=tuple(i for i, r in enumerate(rules) if r.amap and not r.tags),
            name_only=name_only,
            any_name=re.compile("|".join(f"(?:{p})" for p in patterns), re.I) if patterns else None,
            read_keys=frozenset({c.key for r in rules for c in (*r.tags, *r.not_tags)} | skip),
            any_pattern=re.compile("|".join(f"(?:{p})" for p in every), re.I) if every else None,
            pattern_chars=_pattern_chars(every),
        )

    def classify(
        self,
        *,
        tags: Tags | None = None,
        name: str | None = None,
        amap: str | None = None,
        keys: Iterable[str] | None = None,
    ) -> list[tuple[str, str]]:
        """Categories of one feature, as ``(category, rule_id)`` pairs in rule order.

        Name-only rules are skipped for roads and other linear or land features, and when a tag
        or Amap rule of a specific category matches (a metro station named 体育场 is not a sports
        ground); a generic category (``generic = true``, e.g. a school of unknown level) can
        still be refined by the name.

        Parameters
        ----------
        tags
            OSM tags (or None for a POI table row).
        name
            The feature's name (``name``, else ``name:zh``); name rules need it.
        amap
            Amap type path(s), several separated by ``|``.
        keys
            The tag keys present, when the caller knows them (saves looking each one up).
        """
        paths = amap.split("|") if amap else []
        candidates: set[int] = set()
        if tags is not None:
            present = keys if keys is not None else [k for k in self.by_key if k in tags]
            for key in present:
                candidates.update(self.by_key.get(key, ()))
                candidates.update(self.by_key_value.get((key, tags.get(key)), ()))
        if paths:
            candidates.update(self.amap_only)
        typed = sorted(candidates)
        use_names = bool(name and self.any_name is not None and self.any_name.search(name))
        if use_names and tags is not None:
            use_names = not any(k in tags for k in self.name_rules_skip_keys)
        if use_names:
            # a tag or Amap rule of a specific category wins over words in the name
            use_names = not any(
                self.rules[i].category not in self.generic
                and self.rules[i].matches(tags, name, paths)
                for i in typed
            )
            if use_names:
                typed = sorted(candidates.union(self.name_only))
        found: list[tuple[str, str]] = []
        have: set[str] = set()
        for i in typed:
            rule = self.rules[i]
            if rule.category in have or (rule.unless & have):
                continue
            if rule.matches(tags, name, paths):
                found.append((rule.category, rule.id))
                have.add(rule.category)
        return found

    def memo_key(self, tags: Mapping[str, str], name: str | None) -> tuple[Any, ...] | None:
        """A key under which :meth:`classify` (``tags``, ``name``, no Amap type) may be kept:
        features with equal keys get equal categories. The key holds the values of every tag
        a rule reads and only whether there is a name, when the name matches no rule's
        ``name`` or ``not_name`` pattern (then every rule treats it alike); None (do not keep)
        when it matches one."""
        if (
            name
            and self.any_pattern is not None
            and (self.pattern_chars is None or self.pattern_chars.search(name))
            and self.any_pattern.search(name)
        ):
            return None
        read = self.read_keys
        return (bool(name), *[(k, v) for k, v in tags.items() if k in read])

    def transit_capacity(self, category: str) -> str | None:
        """``"low"`` / ``"high"`` for transit categories (SDG 11.2.1), else None."""
        value = self.categories.get(category, {}).get("transit")
        return str(value) if value else None


# --- numbers from tags ---------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def parse_levels(value: str | None) -> float | None:
    """Storeys from a ``building:levels`` value: ``"5"``, ``"5.5"``, ``"4;6"`` (max), ``"5 levels"``.

    Returns None for missing, non-numeric, zero or implausible (> 200) values.
    """
    if not value:
        return None
    numbers = [float(m.replace(",", ".")) for m in _NUMBER.findall(value)]
    if not numbers:
        return None
    levels = max(numbers)
    return levels if 0 < levels <= 200 else None


def parse_height(value: str | None) -> float | None:
    """Metres from an OSM ``height`` value: ``"12"``, ``"12.5 m"``, ``"40'"`` or ``"40 ft"``.

    Returns None for missing, non-numeric, zero or implausible (> 1000 m) values.
    """
    if not value:
        return None
    m = _NUMBER.search(value)
    if m is None:
        return None
    height = float(m.group().replace(",", "."))
    text = value.lower()
    if "ft" in text or "'" in text or "feet" in text:
        height *= 0.3048
    return height if 0 < height <= 1000 else None


# --- OSM layer tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class BuildingRules:
    """Building use by ``building=*`` value; see ``[buildings]`` in ``osm.toml``."""

    residential: frozenset[str]
    non_residential: frozenset[str]
    use_residential: frozenset[str]
    drop: frozenset[str]
    storey_height_m: float

    def use(self, tags: Tags) -> str | None:
        """``"residential"``, ``"non_residential"``, ``"unknown"``, or None to drop the feature."""
        value = tags.get("building")
        if value is None:
            return None
        use = self.use_of_value(value)
        if use != "unknown":
            return use
        explicit = tags.get("building:use")
        if (explicit is not None and explicit in self.use_residential) or "residential" in tags:
            return "residential"
        return "unknown" if explicit is None else "non_residential"

    def use_of_value(self, value: str) -> str | None:
        """Use from the ``building=*`` value alone (no ``building:use`` tag present)."""
        if value in self.drop:
            return None
        if value in self.residential:
            return "residential"
        if value in self.non_residential:
            return "non_residential"
        return "unknown"


@dataclass(frozen=True)
class OsmTables:
    """The tables of ``osm.toml`` in a form cheap to test per feature."""

    walk_highway: frozenset[str]
    walk_highway_if_foot: frozenset[str]
    drive_highway: frozenset[str]
    foot_allowed: frozenset[str]
    foot_denied: frozenset[str]
    access_denied: frozenset[str]
    service_denied: frozenset[str]
    walk_exclude: tuple[TagCondition, ...]
    buildings: BuildingRules
    green_tags: tuple[TagCondition, ...]
    green_not_tags: tuple[TagCondition, ...]
    green_pedestrian_area: bool
    residential_tags: tuple[TagCondition, ...]
    admin_tags: tuple[TagCondition, ...]
    source: str

    def is_walkable(self, tags: Tags) -> bool:
        """True when a way with these tags belongs to the pedestrian network."""
        highway = tags.get("highway")
        if highway is None:
            return False
        foot = tags.get("foot")
        if foot is not None and foot in self.foot_denied:
            return False
        if any(c.matches(tags) for c in self.walk_exclude):
            return False
        foot_ok = foot is not None and foot in self.foot_allowed
        if highway in self.walk_highway_if_foot:
            return foot_ok
        if highway not in self.walk_highway:
            return False
        if foot_ok:
            return True
        access = tags.get("access")
        if access is not None and access in self.access_denied:
            return False
        service = tags.get("service")
        return not (service is not None and service in self.service_denied)

    def green_kind(self, tags: Tags) -> str | None:
        """The tag value that makes this area a public green space or square, else None."""
        if any(c.matches(tags) for c in self.green_not_tags):
            return None
        for cond in self.green_tags:
            if cond.matches(tags):
                return str(tags.get(cond.key))
        if (
            self.green_pedestrian_area
            and tags.get("highway") == "pedestrian"
            and (tags.get("area") == "yes" or tags.get("type") == "multipolygon")
        ):
            return "pedestrian"
        return None

    def is_residential_land(self, tags: Tags) -> bool:
        return any(c.matches(tags) for c in self.residential_tags)

    def is_admin(self, tags: Tags) -> bool:
        return any(c.matches(tags) for c in self.admin_tags)


def load_osm_tables(path: Path | None = None) -> OsmTables:
    """Read and check the OSM layer tables (default: the built-in ``osm.toml``)."""
    data = _read_toml(path, "osm.toml")
    where = str(path) if path else "osm.toml"
    try:
        walk, bld, green = data["walk"], data["buildings"], data["green_spaces"]
        res, admin = data["residential_land"], data["admin"]
    except KeyError as exc:
        raise ConfigError(f"{where}: missing table [{exc.args[0]}]") from exc

    def fs(table: Mapping[str, Any], key: str, name: str) -> frozenset[str]:
        return frozenset(_as_list(table.get(key, []), f"{where} [{name}].{key}"))

    return OsmTables(
        walk_highway=fs(walk, "highway", "walk"),
        walk_highway_if_foot=fs(walk, "highway_if_foot_allowed", "walk"),
        drive_highway=fs(data.get("drive", {}), "highway", "drive"),
        foot_allowed=fs(walk, "foot_allowed", "walk"),
        foot_denied=fs(walk, "foot_denied", "walk"),
        access_denied=fs(walk, "access_denied", "walk"),
        service_denied=fs(walk, "service_denied", "walk"),
        walk_exclude=_conditions(walk.get("exclude"), f"{where} [walk].exclude"),
        buildings=BuildingRules(
            residential=fs(bld, "residential", "buildings"),
            non_residential=fs(bld, "non_residential", "buildings"),
            use_residential=fs(bld, "use_residential", "buildings"),
            drop=fs(bld, "drop", "buildings"),
            storey_height_m=float(bld.get("storey_height_m", 3.0)),
        ),
        green_tags=_conditions(green.get("tags"), f"{where} [green_spaces].tags"),
        green_not_tags=_conditions(green.get("not_tags"), f"{where} [green_spaces].not_tags"),
        green_pedestrian_area=bool(green.get("pedestrian_area", False)),
        residential_tags=_conditions(res.get("tags"), f"{where} [residential_land].tags"),
        admin_tags=_conditions(admin.get("tags"), f"{where} [admin].tags"),
        source=where,
    )
