"""Read a whole ``.osm.pbf`` into flat arrays: every node, way and relation with its tags.

The file's blobs are inflated (``zlib``) and decoded (``cityos._pbf``, C) on two threads, both
without the GIL; the blocks' string tables are merged into one, so a tag is two integers
(:class:`PbfData`). Coordinates are libosmium's fixed-point integers (1e-7 degree), timestamps
seconds since 1970.

The reader keeps the whole extract in memory (about 40 bytes per node and 12 per way node), so
it is for files read with the in-memory node index; larger extracts are read by pyosmium with a
node index on disk (:func:`cityos.sources.osm.read_osm`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cityos.threads import map_threads

__all__ = ["PbfData", "PbfError", "UnsortedError", "UnsupportedError", "available", "read_pbf"]

#: the features a file may require that this reader understands (osmformat.proto)
_KNOWN_FEATURES = {"OsmSchema-V0.6", "DenseNodes"}


class PbfError(ValueError):
    """The file is not a readable PBF (damaged, truncated, or a feature this reader lacks)."""


class UnsupportedError(PbfError):
    """The file needs what this decoder lacks (a required feature, a compression): libosmium
    reads it instead."""


class UnsortedError(PbfError):
    """The objects are not sorted by type, then id (as ``osmium sort`` leaves them)."""


def available() -> bool:
    """Whether the C decoder was compiled (it is optional: without it pyosmium reads)."""
    try:
        from cityos import _pbf  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class PbfData:
    """One extract as flat arrays, objects in file order (sorted by id within each type).

    Tags are ``(obj, k, v)`` triples per type, ``k`` and ``v`` indices into :attr:`strings`,
    ``obj`` the object's position; ``*_off`` are offsets (length + 1) into the per-object lists.
    ``node_ts`` holds the timestamps of the nodes with tags only (:meth:`tagged_nodes`).
    """

    strings: list[str]
    node_id: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    node_ts: np.ndarray
    ntag: tuple[np.ndarray, np.ndarray, np.ndarray]
    way_id: np.ndarray
    way_ts: np.ndarray
    way_off: np.ndarray
    way_refs: np.ndarray
    wtag: tuple[np.ndarray, np.ndarray, np.ndarray]
    rel_id: np.ndarray
    rel_ts: np.ndarray
    rel_off: np.ndarray
    mem_id: np.ndarray
    mem_type: np.ndarray
    mem_role: np.ndarray
    rtag: tuple[np.ndarray, np.ndarray, np.ndarray]

    def tagged_nodes(self) -> np.ndarray:
        """The positions of the nodes with tags, ascending (``node_ts`` is theirs)."""
        obj = self.ntag[0]
        return obj[np.flatnonzero(np.diff(obj, prepend=-1))] if len(obj) else obj

    def string_id(self, s: str) -> int:
        """The index of ``s`` in :attr:`strings`, -1 when no object uses it."""
        index = getattr(self, "_index", None)
        if index is None:
            index = {v: i for i, v in enumerate(self.strings)}
            self._index = index
        return int(index.get(s, -1))


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise PbfError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """The top-level fields of a small message (BlobHeader, Blob, HeaderBlock)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield num, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise PbfError("truncated field")
            yield num, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise PbfError(f"unknown wire type {wire}")


def _blobs(data: memoryview) -> Iterator[tuple[str, memoryview]]:
    """(type, Blob message) of each blob in the file."""
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise PbfError("truncated blob header")
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if size > 64 * 1024 or pos + size > len(data):
            raise PbfError("damaged or truncated blob header")
        kind, datasize = "", -1
        for num, value in _fields(data[pos : pos + size]):
            if num == 1 and isinstance(value, memoryview):
                kind = bytes(value).decode("utf-8", "replace")
            elif num == 3 and isinstance(value, int):
                datasize = value
        pos += size
        if datasize < 0 or pos + datasize > len(data):
            raise PbfError("truncated blob")
        yield kind, data[pos : pos + datasize]
        pos += datasize


def _payload(blob: memoryview) -> bytes:
    raw: memoryview | None = None
    packed: memoryview | None = None
    raw_size = -1
    other = None
    for num, value in _fields(blob):
        if num == 1 and isinstance(value, memoryview):
            raw = value
        elif num == 2 and isinstance(value, int):
            raw_size = value
        elif num == 3 and isinstance(value, memoryview):
            packed = value
        elif num in (4, 5, 6, 7):
            other = {4: "lzma", 5: "bzip2", 6: "lz4", 7: "zstd"}[num]
    if raw is not None:
        return bytes(raw)
    if packed is not None:
        try:
            out = zlib.decompress(packed)
        except zlib.error as exc:
            raise PbfError(f"damaged compressed blob ({exc})") from exc
        if raw_size >= 0 and len(out) != raw_size:
            raise PbfError("a blob inflates to the wrong size")
        return out
    if other is not None:
        raise UnsupportedError(f"blobs compressed with {other}")
    raise PbfError("a blob without data")


def _header_features(blob: memoryview) -> list[str]:
    required = []
    for num, value in _fields(memoryview(_payload(blob))):
        if num == 4 and isinstance(value, memoryview):
            required.append(bytes(value).decode("utf-8", "replace"))
    return required


def _decode(blob: memoryview) -> dict[str, Any]:
    from cityos import _pbf

    try:
        return _pbf.decode(_payload(blob))  # type: ignore[no-any-return]
    except ValueError as exc:
        if isinstance(exc, PbfError):
            raise
        raise PbfError(str(exc)) from exc


_TYPES = {
    "node_id": np.int64, "node_x": np.int32, "node_y": np.int32, "node_ts": np.int64,
    "ntag_obj": np.int32, "ntag_k": np.int32, "ntag_v": np.int32,
    "way_id": np.int64, "way_ts": np.int64, "way_n": np.int32, "way_refs": np.int64,
    "wtag_obj": np.int32, "wtag_k": np.int32, "wtag_v": np.int32,
    "rel_id": np.int64, "rel_ts": np.int64, "rel_n": np.int32,
    "mem_id": np.int64, "mem_type": np.int8, "mem_role": np.int32,
    "rtag_obj": np.int32, "rtag_k": np.int32, "rtag_v": np.int32,
}  # fmt: skip


def read_pbf(path: Path, *, threads: int = 2) -> PbfData:
    """Every object of ``path`` as :class:`PbfData`.

    Raises
    ------
    UnsortedError
        The objects are not sorted by type, then id.
    PbfError
        The file is damaged or truncated, or needs a feature this reader lacks (then pyosmium
        reads it).
    """
    data = memoryview(path.read_bytes())
    blobs: list[memoryview] = []
    for kind, blob in _blobs(data):
        if kind == "OSMHeader":
            missing = set(_header_features(blob)) - _KNOWN_FEATURES
            if missing:
                raise UnsupportedError(f"needs {', '.join(sorted(missing))}")
        elif kind == "OSMData":
            blobs.append(blob)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        blocks = list(pool.map(_decode, blobs))
    return _merge(blocks)


def _merge(blocks: list[dict[str, Any]]) -> PbfData:
    """One :class:`PbfData` from the decoded blocks: strings merged, tag objects renumbered."""
    index: dict[bytes, int] = {}
    remap = []
    for b in blocks:
        remap.append(np.fromiter((index.setdefault(s, len(index)) for s in b["strings"]),
                                 dtype=np.int32, count=len(b["strings"])))  # fmt: skip
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in _TYPES}
    counts = {"node": 0, "way": 0, "rel": 0}
    last_kind = 0
    for b, ids in zip(blocks, remap, strict=True):
        got = {k: np.frombuffer(b[k], dtype=t) for k, t in _TYPES.items()}
        for rank, (kind, tag) in enumerate((("node", "ntag"), ("way", "wtag"), ("rel", "rtag"))):
            n = len(got[f"{kind}_id"])
            if not n:
                continue
            if rank + 1 < last_kind:
                raise UnsortedError(f"{kind}s after objects of a later type")
            last_kind = rank + 1
            arrays[f"{tag}_obj"].append(got[f"{tag}_obj"].astype(np.int64) + counts[kind])
            for part in ("k", "v"):
                arrays[f"{tag}_{part}"].append(
                    ids[got[f"{tag}_{part}"]] if len(ids) else got[f"{tag}_{part}"]
                )
            counts[kind] += n
        for k in _TYPES:
            if k == "mem_role":  # a string id of the block, like the tags'
                arrays[k].append(ids[got[k]] if len(ids) else got[k])
            elif not k.startswith(("ntag", "wtag", "rtag")):
                arrays[k].append(got[k])

    def join(key: str) -> np.ndarray:
        parts = arrays[key]
        return np.concatenate(parts) if parts else np.zeros(0, _TYPES[key])

    # the biggest first, on threads (NumPy copies without the GIL)
    keys = sorted(arrays, key=lambda k: -sum(map(len, arrays[k])))
    cat = dict(zip(keys, map_threads(join, keys), strict=True))
    for kind in ("node_id", "way_id", "rel_id"):
        ids = cat[kind]
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise UnsortedError(f"{kind.split('_')[0]} ids are not ascending")
    strings = [s.decode("utf-8", "replace") for s in index]

    def off(n: np.ndarray) -> np.ndarray:
        out = np.zeros(len(n) + 1, dtype=np.int64)
        np.cumsum(n, out=out[1:])
        return out

    def tags(t: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obj = cat[f"{t}_obj"]
        return (obj.astype(np.int64, copy=False), cat[f"{t}_k"], cat[f"{t}_v"])

    return PbfData(
        strings=strings,
        node_id=cat["node_id"], node_x=cat["node_x"], node_y=cat["node_y"],
        node_ts=cat["node_ts"], ntag=tags("ntag"),
        way_id=cat["way_id"], way_ts=cat["way_ts"], way_off=off(cat["way_n"]),
        way_refs=cat["way_refs"], wtag=tags("wtag"),
        rel_id=cat["rel_id"], rel_ts=cat["rel_ts"], rel_off=off(cat["rel_n"]),
        mem_id=cat["mem_id"], mem_type=cat["mem_type"], mem_role=cat["mem_role"],
        rtag=tags("rtag"),
    )  # fmt: skip
