"""Closed rings in libosmium's form, as flat coordinate arrays (the flat OSM reader's geometry).

libosmium (the assembler behind pyosmium's areas) gives an outer ring counter-clockwise and an
inner ring clockwise, each starting at its lexicographically smallest (x, y) vertex, with
coordinates the fixed-point integer ÷ 1e7; a polygon's inner rings, and a multipolygon's
polygons, come ordered by that first vertex. The functions here give rings that form from
vertex arrays, and say which rings libosmium must judge itself (a location twice in a row, or a
ring that is not simple).
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["rings", "simple"]


def rings(
    lon: np.ndarray, lat: np.ndarray, off: np.ndarray, chunk: int = 200_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_ring_chunk` over ``chunk`` rings at a time (its temporaries, a dozen arrays the
    size of the coordinates, would add about 500 MB at a million buildings)."""
    parts = []
    for a in range(0, max(len(off) - 1, 1), chunk):
        b = min(a + chunk, len(off) - 1)
        lo, hi = off[a], off[b]
        parts.append(_ring_chunk(lon[lo:hi], lat[lo:hi], off[a : b + 1] - lo))
    if len(parts) == 1:
        return parts[0]
    shift = np.cumsum([0] + [len(xy) for xy, _, _ in parts[:-1]])
    return (
        np.concatenate([xy for xy, _, _ in parts]),
        np.concatenate([[0]] + [o[1:] + s for (_, o, _), s in zip(parts, shift, strict=True)]),
        np.concatenate([r for _, _, r in parts]),
    )


def _ring_chunk(
    lon: np.ndarray, lat: np.ndarray, off: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """libosmium's form of closed rings given as vertex arrays (closing vertex included) with
    offsets: (xy with each ring closed, ring offsets, whether the ring needs libosmium).

    Each ring is turned counter-clockwise (shoelace sign) and rotated to start at its
    lexicographically smallest vertex. A ring "needs libosmium" when a location repeats
    consecutively; rings that are not simple are found afterwards with GEOS.
    """
    n = np.diff(off)
    if not len(n):
        return np.empty((0, 2)), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=bool)
    keep = np.ones(len(lon), dtype=bool)
    keep[off[1:] - 1] = False  # each ring without its closing vertex
    x, y = lon[keep], lat[keep]
    m = n - 1
    ring = np.repeat(np.arange(len(m)), m)
    start = np.concatenate([[0], np.cumsum(m)[:-1]]).astype(np.int64)
    nxt = np.arange(len(x)) + 1
    nxt[start + m - 1] = start
    repeat = np.bincount(ring, weights=(x == x[nxt]) & (y == y[nxt]), minlength=len(m)) > 0
    clockwise = np.bincount(ring, weights=x * y[nxt] - x[nxt] * y, minlength=len(m)) < 0
    at_x = x == np.minimum.reduceat(x, start)[ring]
    min_y = np.minimum.reduceat(np.where(at_x, y, np.inf), start)
    hit = np.flatnonzero(at_x & (y == min_y[ring]))
    hit_ring = ring[hit]  # ascending: the first hit of each ring is where its ring number changes
    first = hit[np.concatenate([[True], hit_ring[1:] != hit_ring[:-1]])]
    j = np.arange(len(x)) - start[ring]
    src = start[ring] + (first[ring] - start[ring] + np.where(clockwise[ring], -j, j)) % m[ring]
    xy = np.empty((len(x) + len(m), 2))
    xy[np.arange(len(x)) + ring] = np.column_stack([x[src], y[src]])
    head = start + np.arange(len(m))
    xy[head + m] = xy[head]
    return xy, np.concatenate([[0], np.cumsum(m + 1)]).astype(np.int64), repeat


def simple(xy: np.ndarray, ring_off: np.ndarray) -> np.ndarray:
    """Whether each closed ring is simple (GEOS's ``is_simple``), with a vectorised test for
    quadrilaterals, the common footprint: one is simple when neither pair of opposite edges
    crosses and no two adjacent edges are collinear (a spike); a collinear corner is sent to GEOS
    like every other ring, so the result is GEOS's own."""
    m = np.diff(ring_off) - 1
    simple = np.zeros(len(m), dtype=bool)
    quad = np.flatnonzero(m == 4)
    p = [xy[ring_off[quad] + i] for i in range(4)]

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out: np.ndarray = (a[:, 0] - o[:, 0]) * (b[:, 1] - o[:, 1]) - (a[:, 1] - o[:, 1]) * (
            b[:, 0] - o[:, 0]
        )
        return out

    corners = [cross(p[i], p[(i + 1) % 4], p[(i - 1) % 4]) for i in range(4)]
    # coordinates are multiples of 1e-7 degree, so a cross product of two edges is a multiple of
    # 1e-14 unless it is zero: below half of that it is zero, and every sign used here is exact
    straight = np.zeros(len(quad), dtype=bool)
    for c in corners:
        straight |= np.abs(c) < 5e-15

    def crosses(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        d1, d2, d3, d4 = cross(c, d, a), cross(c, d, b), cross(a, b, c), cross(a, b, d)
        out: np.ndarray = (np.sign(d1) != np.sign(d2)) & (np.sign(d3) != np.sign(d4))
        return out

    # with no collinear corner, opposite edges meet only by a proper crossing
    bow = crosses(p[0], p[1], p[2], p[3]) | crosses(p[1], p[2], p[3], p[0])
    simple[quad] = ~straight & ~bow
    rest = np.flatnonzero(~np.isin(np.arange(len(m)), quad[~straight]))
    if len(rest):
        starts = ring_off[rest]
        lengths = m[rest] + 1
        take = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(
            lengths.sum()
        )
        rings = shapely.from_ragged_array(
            shapely.GeometryType.LINESTRING, xy[take], (np.concatenate([[0], np.cumsum(lengths)]),)
        )
        simple[rest] = shapely.is_simple(rings)
    return simple
