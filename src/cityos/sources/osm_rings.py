"""Closed rings in libosmium's form, as flat coordinate arrays (the flat OSM reader's geometry).

libosmium (the assembler behind pyosmium's areas) gives an outer ring counter-clockwise and an
inner ring clockwise, each starting at its lexicographically smallest (x, y) vertex, with
coordinates the fixed-point integer ÷ 1e7; a polygon's inner rings, and a multipolygon's
polygons, come ordered by that first vertex. :func:`rings` gives rings that form from their
vertices (in C, ``cityos._pbf.rings``, on the fixed-point integers: orientation and simplicity
are exact) and says which rings libosmium must judge itself: a location twice in a row, or a
ring that is not simple as GEOS's ``is_simple`` says (edges that cross or touch, a spike).
"""

from __future__ import annotations

import numpy as np
import shapely

from cityos.threads import cpu_threads, map_threads

__all__ = ["NOT_SIMPLE", "REPEAT", "SIMPLE", "rings"]

#: ring states: simple; a location twice in a row (libosmium's); not simple (libosmium's)
SIMPLE, REPEAT, NOT_SIMPLE, UNTESTED = 0, 1, 2, 3


def rings(
    x: np.ndarray,
    y: np.ndarray,
    off: np.ndarray,
    start: np.ndarray | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed rings (vertex arrays ``x``, ``y`` of fixed-point int32 with the closing vertex,
    ``off`` int64 offsets) in libosmium's form: ``(xy, off, state)``, ``xy`` float64 degrees
    ring by ring, ``state`` :data:`SIMPLE`, :data:`REPEAT` or :data:`NOT_SIMPLE` per ring.

    ``start``: where ring ``i``'s ``off[i + 1] - off[i]`` vertices begin in ``x``, ``y`` (the
    rings are read in place); by default ``off[:-1]``, rings one after another. The rings are
    cut into ``threads`` parts (default: every CPU) of about equal vertex counts made at once
    (the C code lets go of the GIL; each ring is made on its own, so the parts give what one
    call gives)."""
    from cityos import _pbf

    x = np.ascontiguousarray(x, dtype=np.int32)
    y = np.ascontiguousarray(y, dtype=np.int32)
    off = np.ascontiguousarray(off, dtype=np.int64)
    n = max(len(off) - 1, 0)
    src = off[:-1] if start is None else np.ascontiguousarray(start, dtype=np.int64)
    if len(src) != n:
        raise ValueError(f"rings: {len(src)} starts for {n} rings")
    xy = np.empty((int(off[-1]) if n else 0, 2), dtype=np.float64)
    state = np.empty(n, dtype=np.int8)
    parts = (threads or cpu_threads()) if n > 100_000 else 1
    cuts = np.searchsorted(off, np.linspace(0, off[-1] if n else 0, parts + 1))
    cuts[0], cuts[-1] = 0, n

    def part(k: int) -> None:
        a, b = int(cuts[k]), int(cuts[k + 1])
        if b > a:
            _pbf.rings(x, y, src[a:b], off[a : b + 1], xy, state[a:b])

    map_threads(part, range(parts), parts)
    big = np.flatnonzero(state == UNTESTED)
    if len(big):  # rings of hundreds of vertices: GEOS tests them
        lengths = off[big + 1] - off[big]
        take = np.repeat(off[big] - (np.cumsum(lengths) - lengths), lengths) + np.arange(
            int(lengths.sum())
        )
        ring_at = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        lines = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, xy[take], (ring_at,))
        state[big] = np.where(shapely.is_simple(lines), SIMPLE, NOT_SIMPLE)
    return xy, off, state
