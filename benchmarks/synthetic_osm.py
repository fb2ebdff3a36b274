"""Seeded synthetic city extracts written as real .osm.pbf files with pyosmium.

A city is a perturbed street grid (``grid`` × ``grid`` intersections 100 m apart, one shape node
per block side, a footway through every fourth block, some private service roads) with
rectangular buildings on every block (a few as multipolygons with a courtyard), POI nodes of the
facility categories, parks and a landuse polygon. Same seed, same file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
from osmium.osm.mutable import Node, Relation, Way

__all__ = ["CitySpec", "cached_city", "write_city"]

#: where the benchmarks keep the extracts they generate
CACHE = Path(__file__).resolve().parent / ".cache"
LON0, LAT0 = 116.30, 39.85  # Beijing-like latitude
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))

POI_TAGS = [
    {"amenity": "kindergarten"}, {"amenity": "school", "isced:level": "1"},
    {"amenity": "school", "isced:level": "2"}, {"amenity": "clinic"}, {"amenity": "hospital"},
    {"amenity": "social_facility", "social_facility": "day_care", "social_facility:for": "senior"},
    {"amenity": "marketplace"}, {"shop": "supermarket"}, {"shop": "convenience"},
    {"amenity": "pharmacy"}, {"amenity": "community_centre"}, {"amenity": "arts_centre"},
    {"leisure": "pitch"}, {"leisure": "fitness_station"}, {"leisure": "playground"},
    {"amenity": "toilets"}, {"highway": "bus_stop"}, {"railway": "station"},
    {"amenity": "fire_station"}, {"amenity": "police"},
]  # fmt: skip
BUILDING_TYPES = [
    "yes",
    "yes",
    "residential",
    "apartments",
    "house",
    "commercial",
    "office",
    "retail",
]


@dataclass(frozen=True)
class CitySpec:
    """Size of a synthetic city: ``grid`` streets each way, ``buildings`` footprints."""

    name: str
    grid: int
    buildings: int
    pois: int
    seed: int = 42
    residential_only: bool = False  # every building an apartment block (siting benchmarks)


def _lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT


def write_city(spec: CitySpec, path: Path) -> dict[str, int]:
    """Write the city to ``path`` (.osm.pbf, nodes then ways then relations, ids ascending)."""
    rng = np.random.default_rng(spec.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    g, spacing, stamp = spec.grid, 100.0, "2025-06-30T00:00:00Z"
    # --- geometry, all vectorised -------------------------------------------------------------
    ix, iy = np.meshgrid(np.arange(g) * spacing, np.arange(g) * spacing, indexing="xy")
    ix = ix + rng.uniform(-15, 15, ix.shape)
    iy = iy + rng.uniform(-15, 15, iy.shape)
    ew_x = (ix[:, :-1] + ix[:, 1:]) / 2 + rng.uniform(-3, 3, (g, g - 1))  # shape nodes, E-W streets
    ew_y = (iy[:, :-1] + iy[:, 1:]) / 2 + rng.uniform(-3, 3, (g, g - 1))
    ns_x = (ix[:-1, :] + ix[1:, :]) / 2 + rng.uniform(-3, 3, (g - 1, g))  # shape nodes, N-S streets
    ns_y = (iy[:-1, :] + iy[1:, :]) / 2 + rng.uniform(-3, 3, (g - 1, g))
    blocks = (g - 1) * (g - 1)
    n_b = spec.buildings
    shrink = min(1.0, 3.0 / max(n_b / blocks, 1.0)) ** 0.5
    block = rng.integers(0, blocks, n_b)
    cx = (block % (g - 1)) * spacing + rng.uniform(25, 75, n_b)
    cy = (block // (g - 1)) * spacing + rng.uniform(25, 75, n_b)
    w = rng.uniform(6, 18, n_b) * shrink
    h = rng.uniform(6, 14, n_b) * shrink
    levels = rng.integers(1, 33, n_b)
    kind = rng.integers(0, len(BUILDING_TYPES), n_b)
    if spec.residential_only:
        kind[:] = BUILDING_TYPES.index("apartments")
    courtyard = np.flatnonzero(rng.random(n_b) < 0.01)
    has_levels = rng.random(n_b) < 0.6
    corner_dx = np.array([-1, 1, 1, -1])
    corner_dy = np.array([-1, -1, 1, 1])
    bx = (cx[:, None] + w[:, None] * corner_dx).ravel()
    by = (cy[:, None] + h[:, None] * corner_dy).ravel()
    cxs = (cx[courtyard, None] + w[courtyard, None] / 3 * corner_dx).ravel()
    cys = (cy[courtyard, None] + h[courtyard, None] / 3 * corner_dy).ravel()
    px = rng.uniform(0, (g - 1) * spacing, spec.pois)
    py = rng.uniform(0, (g - 1) * spacing, spec.pois)
    pkind = rng.integers(0, len(POI_TAGS), spec.pois)
    parks = np.arange(0, blocks, 50)
    kx = ((parks % (g - 1)) * spacing + 20)[:, None] + 60 * np.array([0, 1, 1, 0])
    ky = ((parks // (g - 1)) * spacing + 20)[:, None] + 60 * np.array([0, 0, 1, 1])

    # --- node ids ------------------------------------------------------------------------------
    base_ew = 1 + g * g
    base_ns = base_ew + g * (g - 1)
    base_b = base_ns + (g - 1) * g
    base_c = base_b + 4 * n_b
    base_p = base_c + 4 * len(courtyard)
    base_k = base_p + spec.pois
    xs = np.concatenate([ix.ravel(), ew_x.ravel(), ns_x.ravel(), bx, cxs, px, kx.ravel()])
    ys = np.concatenate([iy.ravel(), ew_y.ravel(), ns_y.ravel(), by, cys, py, ky.ravel()])
    lon, lat = _lonlat(xs, ys)
    poi_tags = {base_p + i: {**POI_TAGS[pkind[i]], "name": f"设施{i}"} for i in range(spec.pois)}

    writer = osmium.SimpleWriter(str(path))
    try:
        for i, (lo, la) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
            nid = i + 1
            writer.add_node(
                Node(
                    id=nid,
                    location=(lo, la),
                    tags=poi_tags.get(nid, {}),
                    version=1,
                    timestamp=stamp,
                )
            )
        classes = [
            "primary",
            "secondary",
            "tertiary",
            "residential",
            "residential",
            "living_street",
        ]
        wid = 1
        for r in range(g):  # east-west streets: intersection, shape node, intersection, ...
            refs = np.empty(2 * g - 1, dtype=np.int64)
            refs[0::2] = 1 + r * g + np.arange(g)
            refs[1::2] = base_ew + r * (g - 1) + np.arange(g - 1)
            tags = {"highway": classes[r % len(classes)], "name": f"东西街{r}"}
            writer.add_way(Way(id=wid, nodes=refs.tolist(), tags=tags, version=1, timestamp=stamp))
            wid += 1
        for c in range(g):  # north-south streets, every 17th a private service road
            refs = np.empty(2 * g - 1, dtype=np.int64)
            refs[0::2] = 1 + np.arange(g) * g + c
            refs[1::2] = base_ns + np.arange(g - 1) * g + c
            private = c % 17 == 5
            tags = {
                "highway": "service" if private else classes[c % len(classes)],
                "name": f"南北路{c}",
            }
            if private:
                tags["access"] = "private"
            writer.add_way(Way(id=wid, nodes=refs.tolist(), tags=tags, version=1, timestamp=stamp))
            wid += 1
        is_court = np.zeros(n_b, dtype=bool)
        is_court[courtyard] = True
        building_way = {}
        for i in range(n_b):
            first = base_b + 4 * i
            ring = [first, first + 1, first + 2, first + 3, first]
            tags = {} if is_court[i] else {"building": BUILDING_TYPES[kind[i]]}
            if has_levels[i] and not is_court[i]:
                tags["building:levels"] = str(int(levels[i]))
            writer.add_way(Way(id=wid, nodes=ring, tags=tags, version=1, timestamp=stamp))
            building_way[i] = wid
            wid += 1
        inner_way = {}
        for j, i in enumerate(courtyard.tolist()):
            first = base_c + 4 * j
            writer.add_way(
                Way(
                    id=wid,
                    nodes=[first, first + 1, first + 2, first + 3, first],
                    version=1,
                    timestamp=stamp,
                )
            )
            inner_way[i] = wid
            wid += 1
        for j in range(len(parks)):
            first = base_k + 4 * j
            tags = {"leisure": "park", "name": f"公园{j}"}
            writer.add_way(
                Way(
                    id=wid,
                    nodes=[first, first + 1, first + 2, first + 3, first],
                    tags=tags,
                    version=1,
                    timestamp=stamp,
                )
            )
            wid += 1
        for rid, i in enumerate(courtyard.tolist(), start=1):
            tags = {"type": "multipolygon", "building": BUILDING_TYPES[kind[i]]}
            members = [("w", building_way[i], "outer"), ("w", inner_way[i], "inner")]
            writer.add_relation(
                Relation(id=rid, members=members, tags=tags, version=1, timestamp=stamp)
            )
    finally:
        writer.close()
    return {
        "nodes": len(lon),
        "walk_nodes": g * g + 2 * g * (g - 1),
        "ways": wid - 1,
        "relations": len(courtyard),
        "buildings": n_b,
        "pois": spec.pois,
    }


def cached_city(spec: CitySpec, cache: Path = CACHE) -> Path:
    """The city's extract in the benchmarks' cache (``benchmarks/.cache``), written if missing;
    its name holds every number of the spec, so another spec never reuses it."""
    pbf = cache / f"city-{spec.name}-g{spec.grid}-b{spec.buildings}-s{spec.seed}.osm.pbf"
    if not pbf.exists():
        write_city(spec, pbf)
    return pbf
