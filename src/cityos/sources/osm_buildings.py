"""The building reader of :mod:`cityos.sources.osm`: every building area of an extract (closed
ways and multipolygon relations, assembled by libosmium) as the columns of the ``buildings``
layer, with its WKB.

Large extracts are read by two processes, this one in the second: it imports only pyosmium,
pyarrow and the OSM tables (about 0.1 s where the whole reader, with geopandas, takes 0.5 s),
because its start is on the import's critical path.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import osmium
from osmium.filter import EntityFilter, KeyFilter

from cityos.classify import OsmTables

__all__ = ["VACANCY_KEYS"]

_ONE_PART = "010600000001000000"  # little-endian WKB header: MultiPolygon of one polygon


#: lifecycle prefixes and flags that mark a building as out of use (OSM "lifecycle prefix" and
#: ``disused=yes`` / ``abandoned=yes`` / ``vacant=yes``): candidates for re-use in urban renewal
VACANCY_KEYS = ("disused", "abandoned", "vacant")


def _vacancy(tags: Any) -> str | None:
    """``disused``, ``abandoned`` or ``vacant`` when the tags say the building is out of use
    (pyosmium's tags; :func:`vacancy_of_pairs` for any (key, value) pairs)."""
    return vacancy_of_pairs((tag.k, tag.v) for tag in tags)


def vacancy_of_pairs(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The vacancy of a building from its (key, value) tag pairs, see :func:`_vacancy`."""
    for key, value in pairs:
        head = key.split(":", 1)[0]
        if head in VACANCY_KEYS and (key != head or value not in ("no", "")):
            return head
    return None


def _only_for(filt: Any, entities: Any) -> Any:
    """``filt`` applied to ``entities`` only (other objects pass it untouched)."""
    filt.enable_for(entities)
    return filt


def _building_tags(tags: Any) -> tuple[str | None, str | None, str | None, bool]:
    """``building:levels``, ``height``, ``name`` and whether the building is plain: it has no
    other tags (the common case, read with four lookups and no further tests)."""
    n = len(tags)
    if n == 1:  # the building tag alone: nothing else to look up
        return None, None, None, True
    levels, height, name = tags.get("building:levels"), tags.get("height"), tags.get("name")
    plain = 1 + (levels is not None) + (height is not None) + (name is not None) == n
    return levels, height, name, plain


def _address(tags: Any) -> str | None:
    """A building's address from its tags: ``addr:full``, else street and house number
    (``东华门大街 12号``, ``Mannerheimintie 5``); None without them."""
    full = tags.get("addr:full")
    if full:
        return str(full)
    parts = [tags.get("addr:street"), tags.get("addr:housenumber")]
    return " ".join(str(p) for p in parts if p) if parts[0] and parts[1] else None


#: the columns the building readers collect, in the order :meth:`_BuildingRows.add` fills them
_BUILDING_COLUMNS = ("id", "building", "use", "lv", "h", "name", "addr", "vacancy", "wkb")


class _BuildingRows:
    """The buildings layer's columns, one row per building area (shared by both readers)."""

    def __init__(self, tables: OsmTables) -> None:
        self.rules = tables.buildings
        self.rows: dict[str, list[Any]] = {k: [] for k in _BUILDING_COLUMNS}
        self.wkb = osmium.geom.WKBFactory()
        self.area_errors = 0
        # a million calls: the column appends bound once, the use of a plain value looked up once
        self._append = tuple(self.rows[k].append for k in _BUILDING_COLUMNS)
        self._plain_use: dict[str, str | None] = {}

    def add(self, a: Any, tags: Any, building: str) -> tuple[bool, str | None]:
        """Add area ``a`` if it is a building; returns (plain, name), see :func:`_building_tags`."""
        levels, height, name, plain = _building_tags(tags)
        if plain:
            if building not in self._plain_use:
                self._plain_use[building] = self.rules.use_of_value(building)
            use = self._plain_use[building]
        else:
            use = self.rules.use(tags)
        if use is None:
            return plain, name
        try:
            wkb = self.wkb.create_multipolygon(a)
        except RuntimeError:
            self.area_errors += 1
            return plain, name
        id_, b_, use_, lv_, h_, name_, addr_, vacancy_, wkb_ = self._append
        id_(f"{'osm:w' if a.from_way() else 'osm:r'}{a.orig_id()}")
        b_(building)
        use_(use)
        lv_(levels)
        h_(height)
        name_(name)
        addr_(None if plain else _address(tags))
        vacancy_(None if plain else _vacancy(tags))
        wkb_(_wkb_bytes(wkb))
        return plain, name


class _BuildingCollector(osmium.SimpleHandler):
    """Buildings only (a second process reads them while the first reads everything else)."""

    def __init__(self, tables: OsmTables) -> None:
        super().__init__()
        self.buildings = _BuildingRows(tables)

    def area(self, a: Any) -> None:
        tags = a.tags
        self.buildings.add(a, tags, tags.get("building"))


def _wkb_bytes(hex_wkb: str) -> bytes:
    return bytes.fromhex(hex_wkb[18:] if hex_wkb.startswith(_ONE_PART) else hex_wkb)


def _read_buildings(path: str, tables: OsmTables, storage: str, out: str) -> int:
    """Collect the buildings of ``path`` into an Arrow file ``out``; returns area errors."""
    import pyarrow as pa
    import pyarrow.feather as feather

    c = _BuildingCollector(tables)
    # relations must pass too: the filters also choose the multipolygon relations to assemble
    filters: list[Any] = [
        EntityFilter(osmium.osm.AREA | osmium.osm.RELATION),
        KeyFilter("building"),
    ]
    c.apply_file(path, locations=True, idx=storage, filters=filters)
    rows = c.buildings.rows
    table = pa.table(
        {k: pa.array(v, type=pa.binary() if k == "wkb" else pa.string()) for k, v in rows.items()}
    )
    feather.write_feather(table, out, compression="uncompressed")
    return c.buildings.area_errors


def _buildings_main(argv: list[str]) -> int:
    """Entry of the building reader process: ``TABLES_PICKLE OSM_FILE STORAGE OUT``."""
    tables_file, path, storage, out = argv
    with open(tables_file, "rb") as fh:
        tables = pickle.load(fh)
    errors = _read_buildings(path, tables, storage, out)
    Path(out + ".errors").write_text(str(errors))
    return 0
