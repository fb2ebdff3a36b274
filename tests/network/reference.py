"""A slow, obviously correct reference: networkx Dijkstra over the graph with every snapped
point inserted as a node on its edge (split at the sorted offsets) plus its access leg."""

from __future__ import annotations

from collections import defaultdict

import networkx as nx
import numpy as np

from cityos.network import Snapped, WalkGraph


def reference_graph(graph: WalkGraph, points: dict[str, Snapped]) -> nx.MultiGraph:
    """Nodes: ("n", i) graph nodes, (kind, k) points; point k of ``kind`` sits on its edge."""
    g = nx.MultiGraph()
    g.add_nodes_from(("n", i) for i in range(graph.n_nodes))
    on_edge: dict[int, list[tuple[float, tuple[str, int]]]] = defaultdict(list)
    for kind, snapped in points.items():
        for k in range(len(snapped)):
            g.add_node((kind, k))
            e = int(snapped.edge[k])
            if e < 0:
                continue
            pos = (kind + "@", k)
            g.add_edge((kind, k), pos, weight=float(snapped.access[k]))
            on_edge[e].append((float(snapped.offset[k]), pos))
    for e in range(graph.n_edges):
        u, v, length = (
            ("n", int(graph.edge_u[e])),
            ("n", int(graph.edge_v[e])),
            float(graph.edge_length[e]),
        )
        stops = sorted(on_edge.get(e, []))
        prev, at = u, 0.0
        for off, pos in stops:
            g.add_edge(prev, pos, weight=off - at)
            prev, at = pos, off
        g.add_edge(prev, v, weight=length - at)
    return g


def reference_distances(graph: WalkGraph, origins: Snapped, facilities: Snapped) -> np.ndarray:
    """Matrix (origins × facilities) of exact walking distances (inf where unreachable)."""
    g = reference_graph(graph, {"o": origins, "f": facilities})
    out = np.full((len(origins), len(facilities)), np.inf)
    for j in range(len(facilities)):
        if facilities.edge[j] < 0:
            continue
        dist = nx.single_source_dijkstra_path_length(g, ("f", j), weight="weight")
        for i in range(len(origins)):
            out[i, j] = dist.get(("o", i), np.inf)
    return out
