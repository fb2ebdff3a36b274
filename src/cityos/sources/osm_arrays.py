"""The decoded extract as tables for the flat reader (:mod:`cityos.sources.osm_flat`): each
object type's tags as string ids, and the located nodes of every way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cityos.sources.pbf import PbfData
from cityos.threads import map_threads


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The positions ``lo[i]:hi[i]`` of every ``i``, concatenated."""
    n = hi - lo
    total = int(n.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)


def _take_ranges(src: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``src[_ranges(lo, hi)]`` (rows of ``src``), copied range by range in C."""
    from cityos import _pbf

    src = np.ascontiguousarray(src)
    lo = np.ascontiguousarray(lo, dtype=np.int64)
    hi = np.ascontiguousarray(hi, dtype=np.int64)
    out = np.empty((int((hi - lo).sum()), *src.shape[1:]), dtype=src.dtype)
    row = src.itemsize * (int(np.prod(src.shape[1:])) if src.ndim > 1 else 1)
    if len(out):
        _pbf.copy_ranges(
            src.reshape(-1).view(np.uint8), lo, hi, out.reshape(-1).view(np.uint8), row
        )
    return out


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


class _Tags:
    """The tags of one object type as a table: per object, keys and values as string ids."""

    def __init__(self, n: int, tags: tuple[np.ndarray, np.ndarray, np.ndarray], d: PbfData,
                 strings: np.ndarray, drop: str | None = None) -> None:  # fmt: skip
        obj, k, v = tags
        if drop is not None and (s := d.string_id(drop)) >= 0:
            keep = k != s
            obj, k, v = obj[keep], k[keep], v[keep]
        self.n, self.obj, self.k, self.v, self.d, self.strings = n, obj, k, v, d, strings
        self.off = _offsets(np.bincount(obj, minlength=n)[:n])

    def count(self) -> np.ndarray:
        return np.diff(self.off)

    def value(self, key: str) -> np.ndarray:
        """The string id of each object's ``key`` value, -1 without it."""
        out = np.full(self.n, -1, dtype=np.int64)
        s = self.d.string_id(key)
        if s >= 0:
            m = self.k == s
            out[self.obj[m]] = self.v[m]
        return out

    def any_of(self, keys: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        ids = [s for s in map(self.d.string_id, keys) if s >= 0]
        if ids:
            out[self.obj[np.isin(self.k, ids)]] = True
        return out

    def dicts(self, objs: np.ndarray) -> list[dict[str, str]]:
        """The tags of ``objs`` (object positions) as dicts, in that order."""
        lo, hi = self.off[objs], self.off[objs + 1]
        at = _ranges(lo, hi)
        ks = self.strings[self.k[at]].tolist()
        vs = self.strings[self.v[at]].tolist()
        out, a = [], 0
        for b in np.cumsum(hi - lo).tolist():
            out.append(dict(zip(ks[a:b], vs[a:b], strict=True)))
            a = b
        return out


@dataclass
class _Ways:
    """Way nodes located: positions into the node arrays, and per way the tests of areas."""

    off: np.ndarray
    located: np.ndarray
    x: np.ndarray
    y: np.ndarray
    closed_id: np.ndarray
    area_ok: np.ndarray


def _locate(d: PbfData) -> _Ways:
    from cityos import _pbf

    refs, off = d.way_refs, d.way_off
    n = np.diff(off)
    x = np.empty(len(refs), dtype=np.int32)
    y = np.empty(len(refs), dtype=np.int32)
    located = np.empty(len(refs), dtype=np.bool_)
    ok = located.view(np.uint8)
    # the refs in two halves at once (the C code lets go of the GIL; each ref on its own)
    cuts = [0, len(refs) // 2, len(refs)] if len(refs) > 1_000_000 else [0, len(refs)]

    def part(k: int) -> None:
        a, b = cuts[k], cuts[k + 1]
        _pbf.locate(d.node_id, d.node_x, d.node_y, refs[a:b], x[a:b], y[a:b], ok[a:b])

    map_threads(part, range(len(cuts) - 1))
    if not len(refs):
        none = np.zeros(len(n), dtype=bool)
        return _Ways(off, located, x, y, none, none)
    nonempty = n > 0
    first = np.minimum(off[:-1], len(refs) - 1)
    last = np.maximum(off[1:] - 1, 0)
    closed_id = nonempty & (refs[first] == refs[last])
    closed_loc = nonempty & (x[first] == x[last]) & (y[first] == y[last])
    # a way with a node not located: the ways of the (few) positions not located
    all_located = nonempty.copy()
    all_located[np.searchsorted(off, np.flatnonzero(~located), side="right") - 1] = False
    return _Ways(off, located, x, y, closed_id, (n > 3) & closed_loc & all_located)
