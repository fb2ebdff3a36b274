"""Write an OSM file whose ways are out of id order, as editors (JOSM) and some Overpass exports
save them: ``python unsort_osm.py SOURCE TARGET`` (the second half of the ways first)."""

from __future__ import annotations

import sys
from typing import Any

import osmium


def _common(o: Any) -> dict[str, Any]:
    return {"id": o.id, "version": o.version, "timestamp": o.timestamp,
            "tags": {t.k: t.v for t in o.tags}}  # fmt: skip


class _Read(osmium.SimpleHandler):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, Any]] = []
        self.ways: list[dict[str, Any]] = []
        self.relations: list[dict[str, Any]] = []

    def node(self, n: Any) -> None:
        self.nodes.append({**_common(n), "location": (n.location.lon, n.location.lat)})

    def way(self, w: Any) -> None:
        self.ways.append({**_common(w), "nodes": [r.ref for r in w.nodes]})

    def relation(self, r: Any) -> None:
        members = [(m.type, m.ref, m.role) for m in r.members]
        self.relations.append({**_common(r), "members": members})


def main(source: str, target: str) -> None:
    objects = _Read()
    objects.apply_file(source)
    writer = osmium.SimpleWriter(target, overwrite=True)
    half = len(objects.ways) // 2
    for n in objects.nodes:
        writer.add_node(osmium.osm.mutable.Node(**n))
    for w in objects.ways[half:] + objects.ways[:half]:
        writer.add_way(osmium.osm.mutable.Way(**w))
    for r in objects.relations:
        writer.add_relation(osmium.osm.mutable.Relation(**r))
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
