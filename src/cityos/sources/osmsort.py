"""Sort an OSM file by type and id, for exports whose objects are out of order.

libosmium reads a file in one pass and needs nodes before ways before relations, each by
ascending id; files saved by editors (JOSM) and some Overpass queries are not. They are fine
otherwise, so cityos sorts them into a temporary copy and reads that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import osmium

__all__ = ["sort_osm_file", "unsorted_error"]


def unsorted_error(exc: BaseException) -> bool:
    """True when libosmium refused a file only because its objects are out of order."""
    return "out of order" in str(exc).lower()


class _All(osmium.SimpleHandler):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, Any]] = []
        self.ways: list[dict[str, Any]] = []
        self.relations: list[dict[str, Any]] = []

    @staticmethod
    def _common(o: Any) -> dict[str, Any]:
        return {
            "id": o.id,
            "version": o.version,
            "visible": o.visible,
            "changeset": o.changeset,
            "timestamp": o.timestamp,
            "uid": o.uid,
            "user": o.user,
            "tags": {t.k: t.v for t in o.tags},
        }

    def node(self, n: Any) -> None:
        loc = n.location
        where = (loc.lon, loc.lat) if loc.valid() else None
        self.nodes.append({**self._common(n), "location": where})

    def way(self, w: Any) -> None:
        self.ways.append({**self._common(w), "nodes": [r.ref for r in w.nodes]})

    def relation(self, r: Any) -> None:
        members = [(m.type, m.ref, m.role) for m in r.members]
        self.relations.append({**self._common(r), "members": members})


def sort_osm_file(source: Path, target: Path) -> int:
    """Write ``source``'s objects to ``target`` sorted by type (nodes, ways, relations) and id,
    keeping the header's box and replication timestamp; returns the number of objects.

    Everything is held in memory once (about 200 bytes per object), which suits the district and
    city exports that come unsorted; planet-scale files come sorted.
    """
    reader = osmium.io.Reader(str(source), osmium.osm.NOTHING)
    try:
        old = reader.header()
        header = osmium.io.Header()
        for key in ("osmosis_replication_timestamp", "timestamp", "generator"):
            if old.get(key):
                header.set(key, old.get(key))
        box = old.box()
        if box.valid():
            header.add_box(box)
    finally:
        reader.close()
    every = _All()
    every.apply_file(str(source))
    writer = osmium.SimpleWriter(str(target), header=header, overwrite=True)
    try:
        for n in sorted(every.nodes, key=lambda o: o["id"]):
            writer.add_node(osmium.osm.mutable.Node(**n))
        for w in sorted(every.ways, key=lambda o: o["id"]):
            writer.add_way(osmium.osm.mutable.Way(**w))
        for r in sorted(every.relations, key=lambda o: o["id"]):
            writer.add_relation(osmium.osm.mutable.Relation(**r))
    finally:
        writer.close()
    return len(every.nodes) + len(every.ways) + len(every.relations)
