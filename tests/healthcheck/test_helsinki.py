"""The health check on the real Helsinki sample: three coverage indicators recomputed here
independently with networkx over the same snapped walking graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely

import cityos
from cityos.healthcheck.engine import checkup
from cityos.network import graph_from_bundle, snap_points
from cityos.population import estimate_population
from tests.conftest import import_expecting
from tests.network.reference import reference_graph


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> cityos.Bundle:
    return import_expecting(tmp_path_factory.mktemp("hel") / "b", osm=cityos.demo_osm_path())


@pytest.mark.parametrize(
    ("indicator", "categories", "radius"),
    [
        ("pop_supermarket_500m", ["supermarket", "market"], 500.0),
        ("pop_playground_300m", ["playground", "fitness", "sports_ground"], 300.0),
        ("pop_primary_school_500m", ["primary_school"], 500.0),
    ],
)
def test_city_coverage_equals_networkx(
    helsinki: cityos.Bundle, indicator: str, categories: list[str], radius: float
) -> None:
    result = checkup(helsinki, systems=["complete-community"])
    got = result.indicators.query("indicator_id == @indicator and level == 'city'")["value"].iloc[0]

    buildings = helsinki.projected("buildings")
    graph = graph_from_bundle(helsinki)
    origins = snap_points(graph, shapely.point_on_surface(buildings.geometry.to_numpy()))
    fac = helsinki.projected("facilities")
    fac = fac[fac["category"].isin(categories)]
    targets = snap_points(graph, fac.geometry.to_numpy())
    g = reference_graph(graph, {"o": origins, "f": targets})
    sources = [("f", j) for j in range(len(targets)) if targets.edge[j] >= 0]
    dist = nx.multi_source_dijkstra_path_length(g, sources, weight="weight")
    d = np.array([dist.get(("o", i), np.inf) for i in range(len(origins))])
    pop = estimate_population(
        buildings, residential_land=helsinki.projected("residential_land")
    ).population.to_numpy()
    expect = pop[d <= radius + 1e-6].sum() / pop.sum() * 100
    assert 0 < expect < 100
    assert got == pytest.approx(expect, abs=1e-6)
