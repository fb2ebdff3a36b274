"""Probe for issue 16: the closed-way buildings of an extract read column-wise (DuckDB's
``ST_ReadOSM`` scan, node ids joined in NumPy, rings built with ``shapely.from_ragged_array``)
and compared, geometry by geometry, with the buildings of a cityos bundle of the same extract.

libosmium (pyosmium, cityos's reader) writes each outer ring counter-clockwise, starting at its
lexicographically smallest (x, y) vertex, with coordinates as the fixed-point integer ÷ 1e7;
this probe does the same, so equality is exact (tolerance 0), not after normalisation. It reads
what the bundle's building reader reads for closed ways only: no multipolygon relations, no
tags, no use rules (a way cityos drops by its use, e.g. ``building=entrance``, is counted as
"not in the bundle").

Runs in the quackosm virtual environment of bench_import.py (DuckDB with its spatial extension
from its wheel, NumPy, shapely, geopandas)::

    benchmarks/.cache/quackosm-venv/bin/python benchmarks/columnar_buildings.py PBF [BUNDLE]

Prints one JSON line: seconds by stage, polygons, and (with BUNDLE) how many equal exactly.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import duckdb
import duckdb_extension_spatial
import numpy as np
import shapely


def read(pbf: str) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Way ids and polygons of the closed ways tagged ``building`` whose nodes are all in the
    file, and the seconds per stage."""
    ext = next(pathlib.Path(duckdb_extension_spatial.__path__[0]).rglob("*.duckdb_extension"))
    con = duckdb.connect()
    con.load_extension(str(ext))
    t0 = time.perf_counter()
    nodes = con.sql(
        f"select id, lon, lat from ST_ReadOSM('{pbf}') where kind = 'node'"
    ).fetchnumpy()
    ways = con.sql(f"select id, refs from ST_ReadOSM('{pbf}') where kind = 'way' "
                   "and map_contains(tags, 'building')").arrow().read_all()  # fmt: skip
    t1 = time.perf_counter()
    order = np.argsort(nodes["id"])
    sorted_ids = nodes["id"][order]
    lon = np.rint(nodes["lon"] * 1e7) / 1e7  # libosmium: the fixed-point integer ÷ 1e7
    lat = np.rint(nodes["lat"] * 1e7) / 1e7
    refs = ways.column("refs").combine_chunks()
    flat = refs.flatten().to_numpy()
    off = refs.offsets.to_numpy().astype(np.int64)
    k = np.minimum(np.searchsorted(sorted_ids, flat), len(sorted_ids) - 1)
    found = sorted_ids[k] == flat
    pos = order[k]
    n = np.diff(off)
    closed = (n >= 4) & (flat[off[:-1]] == flat[off[1:] - 1])
    ok = closed & (np.add.reduceat(found.astype(np.int64), off[:-1]) == n)
    t2 = time.perf_counter()
    keep = np.repeat(ok, n)
    keep[off[1:] - 1] = False  # each ring without its closing vertex
    x, y = lon[pos[keep]], lat[pos[keep]]
    m = n[ok] - 1
    ring = np.repeat(np.arange(len(m)), m)
    start = np.concatenate([[0], np.cumsum(m)[:-1]])
    nxt = np.arange(len(x)) + 1
    nxt[start + m - 1] = start
    clockwise = np.bincount(ring, weights=x * y[nxt] - x[nxt] * y, minlength=len(m)) < 0
    at_x = x == np.minimum.reduceat(x, start)[ring]
    min_y = np.minimum.reduceat(np.where(at_x, y, np.inf), start)
    hit = np.flatnonzero(at_x & (y == min_y[ring]))
    first = hit[np.unique(ring[hit], return_index=True)[1]]
    j = np.arange(len(x)) - start[ring]
    src = start[ring] + (first[ring] - start[ring] + np.where(clockwise[ring], -j, j)) % m[ring]
    xy = np.empty((len(x) + len(m), 2))
    xy[np.arange(len(x)) + ring] = np.column_stack([x[src], y[src]])
    xy[start + np.arange(len(m)) + m] = xy[start + np.arange(len(m))]
    rings = np.concatenate([[0], np.cumsum(m + 1)])
    polys = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, xy, (rings, np.arange(len(m) + 1))
    )
    valid = shapely.is_valid(polys)
    t3 = time.perf_counter()
    stages = {"scan": t1 - t0, "join": t2 - t1, "rings and polygons": t3 - t2, "total": t3 - t0}
    return ways.column("id").to_numpy()[ok][valid], polys[valid], stages


def main() -> None:
    ids, polys, stages = read(sys.argv[1])
    out: dict[str, object] = {"seconds": {k: round(v, 2) for k, v in stages.items()},
                              "polygons": len(polys)}  # fmt: skip
    if len(sys.argv) > 2:
        import geopandas as gpd

        b = gpd.read_parquet(pathlib.Path(sys.argv[2]) / "buildings.parquet",
                             columns=["building_id", "geometry"])  # fmt: skip
        ways = b[b["building_id"].str.startswith("osm:w")]
        where = {int(v[5:]): i for i, v in enumerate(ways["building_id"])}
        mine = [i for i, v in enumerate(ids.tolist()) if v in where]
        theirs = ways.geometry.to_numpy()[[where[int(ids[i])] for i in mine]]
        out.update(bundle_ways=len(ways), matched=len(mine), not_in_bundle=len(ids) - len(mine),
                   exactly_equal=int(shapely.equals_exact(polys[mine], theirs, 0).sum()))  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
