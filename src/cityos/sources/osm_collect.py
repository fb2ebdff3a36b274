"""The pyosmium reader's side of an OpenStreetMap extract: the libosmium handler that collects
one pass (walk ways as flat node arrays, facilities by the rules table, green spaces,
residential land, admin boundaries and, unless a second process reads them, buildings), and the
second process that reads the buildings of a large file.

Used by :func:`cityos.sources.osm.read_osm` for XML, o5m, a node index on disk and builds without
the compiled extension; the flat reader (:mod:`cityos.sources.osm_flat`) follows the same rules.
"""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
import warnings
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import shapely

from cityos.classify import FacilityRules, OsmTables
from cityos.sources.osm_buildings import (
    _building_tags,
    _BuildingRows,
    _read_buildings,
    _wkb_bytes,
)

__all__: list[str] = []  # internal to cityos.sources.osm


class _Collector(osmium.SimpleHandler):
    """Accumulates the objects of one pass in flat arrays and lists (callbacks from libosmium)."""

    def __init__(
        self,
        rules: FacilityRules,
        tables: OsmTables,
        progress: Callable[[int], None] | None,
        *,
        buildings: bool = True,
    ) -> None:
        super().__init__()
        # None: another process collects the buildings
        self.buildings = _BuildingRows(tables) if buildings else None
        self.progress = progress
        self.seen = 0
        self.rules = rules
        self.tables = tables
        self.fac_keys = rules.trigger_keys | {"name", "name:zh"}
        self.rule_keys = tuple(rules.by_key)
        # walk ways: flat node arrays with one entry per (way piece, node)
        self.w_refs = array("q")
        self.w_lon = array("d")
        self.w_lat = array("d")
        self.w_piece_start = array("q")
        self.w_way: list[int] = []
        self.w_highway: list[str] = []
        self.w_name: list[str | None] = []
        self.fac: dict[str, list[Any]] = {
            k: [] for k in ("fid", "cat", "rule", "name", "geom", "poly")
        }
        self.green: dict[str, list[Any]] = {k: [] for k in ("id", "kind", "name", "wkb")}
        self.res: dict[str, list[Any]] = {k: [] for k in ("id", "wkb")}
        self.adm: dict[str, list[Any]] = {k: [] for k in ("id", "name", "admin_level", "wkb")}
        self.wkb = osmium.geom.WKBFactory()
        self.newest: dt.datetime | None = None
        self.stats = {"area_errors": 0, "missing_locations": 0}

    def _tick(self) -> None:
        self.seen += 1
        if self.progress is not None and not self.seen & 0xFFFF:
            self.progress(0x10000)

    def _stamp(self, obj: Any) -> None:
        ts = obj.timestamp
        if self.newest is None or ts > self.newest:
            self.newest = ts

    def _present(self, tags: Any) -> list[str]:
        """Facility-rule keys present (one C++ lookup each, much cheaper than iterating tags)."""
        return [k for k in self.rule_keys if k in tags]

    def _facility(
        self, tags: Any, fid: str, geom: Callable[[], Any], is_poly: bool, present: list[str]
    ) -> bool:
        """Classify one object; ``geom`` is called only when it is a facility."""
        name = tags.get("name") or tags.get("name:zh")
        if not present and not name:
            return False
        # one pass over the tags into a dict beats a C++ lookup per rule condition
        found = self.rules.classify(tags={t.k: t.v for t in tags}, name=name, keys=present)
        if not found:
            return False
        g = geom()
        if g is None:
            return False
        f = self.fac
        for cat, rule in found:
            f["fid"].append(fid)
            f["cat"].append(cat)
            f["rule"].append(rule)
            f["name"].append(name)
            f["geom"].append(g)
            f["poly"].append(is_poly)
        return True

    def node(self, n: Any) -> None:
        self._tick()
        loc = n.location
        if not loc.valid():
            return
        tags = n.tags
        if self._facility(
            tags, f"osm:n{n.id}", lambda: (loc.lon, loc.lat), False, self._present(tags)
        ):
            self._stamp(n)

    def way(self, w: Any) -> None:
        self._tick()
        tags = w.tags
        walkable = self.tables.is_walkable(tags)
        if walkable:
            self._stamp(w)
            self._walk_way(w, tags)
        if w.is_closed():  # areas are handled in area()
            return
        present = self._present(tags)
        if not present and (walkable or "name" not in tags):
            return

        def middle() -> tuple[float, float] | None:
            # facilities mapped as open lines (running tracks, …): the middle node stands for them
            nodes = [n for n in w.nodes if n.location.valid()]
            if not nodes:
                return None
            mid = nodes[len(nodes) // 2].location
            return (mid.lon, mid.lat)

        self._facility(tags, f"osm:w{w.id}", middle, False, present)

    def _walk_way(self, w: Any, tags: Any) -> None:
        start_len = len(self.w_refs)
        pieces: list[int] = []
        current = 0
        refs, lons, lats = self.w_refs, self.w_lon, self.w_lat
        for n in w.nodes:
            loc = n.location
            if not loc.valid():
                self.stats["missing_locations"] += 1
                if current >= 2:
                    pieces.append(current)
                elif current:
                    del refs[-current:], lons[-current:], lats[-current:]
                current = 0
                continue
            refs.append(n.ref)
            lons.append(loc.lon)
            lats.append(loc.lat)
            current += 1
        if current >= 2:
            pieces.append(current)
        elif current:
            del refs[-current:], lons[-current:], lats[-current:]
        if not pieces:
            return
        highway = tags.get("highway")
        name = tags.get("name")
        pos = start_len
        for size in pieces:
            self.w_piece_start.append(pos)
            self.w_way.append(w.id)
            self.w_highway.append(highway)
            self.w_name.append(name)
            pos += size

    def area(self, a: Any) -> None:
        self._tick()
        tags = a.tags
        tables = self.tables
        fid = f"{'osm:w' if a.from_way() else 'osm:r'}{a.orig_id()}"
        wkb: str | None = None

        def geom() -> str | None:
            nonlocal wkb
            if wkb is None:
                try:
                    wkb = self.wkb.create_multipolygon(a)
                except RuntimeError:
                    self.stats["area_errors"] += 1
                    wkb = ""
            return wkb or None

        building = tags.get("building")
        if building is not None:
            if self.buildings is not None:
                plain, name = self.buildings.add(a, tags, building)
            else:
                _, _, name, plain = _building_tags(tags)
            if plain:  # only its name can make it a facility
                if name is not None and self._facility(tags, fid, geom, True, []):
                    self._stamp(a)
                return
        used = False
        present = self._present(tags)
        if present or "name" in tags or "name:zh" in tags:
            used = self._facility(tags, fid, geom, True, present) or used
        kind = tables.green_kind(tags)
        if kind is not None and (g := geom()):
            self.green["id"].append(fid)
            self.green["kind"].append(kind)
            self.green["name"].append(tags.get("name"))
            self.green["wkb"].append(g)
            used = True
        if tables.is_residential_land(tags) and (g := geom()):
            self.res["id"].append(fid)
            self.res["wkb"].append(g)
            used = True
        if tables.is_admin(tags) and (g := geom()):
            level = tags.get("admin_level")
            self.adm["id"].append(fid)
            self.adm["name"].append(tags.get("name"))
            try:
                self.adm["admin_level"].append(float(level) if level else np.nan)
            except ValueError:
                self.adm["admin_level"].append(np.nan)
            self.adm["wkb"].append(g)
            used = True
        if used:
            self._stamp(a)


def _start_buildings_process(
    path: Path, tables: OsmTables, storage: str, tmp: Path
) -> subprocess.Popen[bytes]:
    """Start a fresh interpreter that reads the buildings (no fork, no __main__ re-import)."""
    if "," in storage:  # a file-backed index: the second process needs its own file
        storage = f"{storage}.buildings"
    tables_file = tmp / "tables.pickle"
    tables_file.write_bytes(pickle.dumps(tables))
    code = "import sys; from cityos.sources.osm_buildings import _buildings_main; sys.exit(_buildings_main(sys.argv[1:]))"
    args = [
        sys.executable,
        "-c",
        code,
        str(tables_file),
        str(path),
        storage,
        str(tmp / "buildings.arrow"),
    ]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish_buildings(
    child: subprocess.Popen[bytes] | None,
    c: _Collector,
    path: Path,
    tables: OsmTables,
    storage: str,
    tmp: Path,
) -> tuple[dict[str, list[Any]], np.ndarray]:
    """The buildings' columns and geometries, from the child process or from ``c``."""
    if child is not None:
        _, err = child.communicate()
        out = tmp / "buildings.arrow"
        if child.returncode != 0 or not out.exists():
            # a child that cannot start or dies is not the user's fault: read them here instead
            warnings.warn(
                "building reader process failed "
                f"({err.decode(errors='replace').strip().splitlines()[-1:] or child.returncode}); "
                "reading buildings in this process",
                RuntimeWarning,
                stacklevel=3,
            )
            _read_buildings(str(path), tables, storage, str(out))
        else:
            c.stats["area_errors"] += int((tmp / "buildings.arrow.errors").read_text())
        import pyarrow.feather as feather

        table = feather.read_table(out)
        b = {
            k: table.column(k).to_numpy(zero_copy_only=False)
            for k in ("id", "building", "use", "lv", "h", "name", "addr", "vacancy")
        }
        return b, np.asarray(shapely.from_wkb(table.column("wkb").to_numpy(zero_copy_only=False)))
    assert c.buildings is not None
    c.stats["area_errors"] += c.buildings.area_errors
    rows = c.buildings.rows
    return rows, np.asarray(shapely.from_wkb(rows["wkb"]))


def _polygons(wkbs: list[str]) -> np.ndarray:
    """Hex WKB from libosmium → shapely; one-part MultiPolygons become Polygons."""
    if not wkbs:
        return np.array([], dtype=object)
    # dropping the 9-byte MultiPolygon header leaves the polygon's own WKB; bytes parse about
    # three times faster than hex strings in shapely
    raw = [_wkb_bytes(w) for w in wkbs]
    return np.asarray(shapely.from_wkb(raw))


def _walk_arrays(c: _Collector) -> dict[str, np.ndarray]:
    """The collector's walk ways as the arrays of :func:`_split_walk`."""

    def flat(a: array[Any], dtype: Any) -> np.ndarray:
        return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype)

    return {
        "refs": flat(c.w_refs, np.int64),
        "lon": flat(c.w_lon, np.float64),
        "lat": flat(c.w_lat, np.float64),
        "starts": flat(c.w_piece_start, np.int64),
        "way": np.asarray(c.w_way, dtype=np.int64),
        "highway": np.asarray(c.w_highway, dtype=object),
        "name": np.asarray(c.w_name, dtype=object),
    }
