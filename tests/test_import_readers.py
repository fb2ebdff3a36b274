"""The bundle the flat reader makes against the one pyosmium's makes (issue 16): the same
layers, rows, columns and values, geometries equal, the same manifest, on Helsinki, Kouvola and
a synthetic city."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import cityos
from benchmarks.synthetic_osm import CitySpec, write_city
from cityos.bundle import LAYER_SCHEMAS, read_bundle
from cityos.sources import pbf
from tests.conftest import MISSING_CATEGORIES, import_expecting

#: the Finnish extracts and the synthetic city lack some Chinese facility types
EXPECT = (MISSING_CATEGORIES,)


def _both(
    tmp_path: Path, osm: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[cityos.Bundle, cityos.Bundle]:
    flat = import_expecting(tmp_path / "flat", expect=EXPECT, osm=osm)
    with monkeypatch.context() as m:
        m.setattr(pbf, "available", lambda: False)  # no decoder: pyosmium reads
        slow = import_expecting(tmp_path / "pyosmium", expect=EXPECT, osm=osm)
    return read_bundle(flat.path), read_bundle(slow.path)


def _synthetic(tmp_path: Path) -> Path:
    path = tmp_path / "city.osm.pbf"
    write_city(CitySpec("readers", grid=30, buildings=3_000, pois=300, seed=11), path)
    return path


@pytest.mark.parametrize("city", ["helsinki", "kouvola", "synthetic"])
def test_flat_and_pyosmium_bundles_are_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, city: str
) -> None:
    osm = _synthetic(tmp_path) if city == "synthetic" else cityos.demo_osm_path(city)
    flat, slow = _both(tmp_path, osm, monkeypatch)
    for name in LAYER_SCHEMAS:
        a, b = flat.layers[name], slow.layers[name]
        if name == "facilities":  # pyosmium hands areas over in batches: its order varies
            a, b = (f.sort_values("facility_id", ignore_index=True) for f in (a, b))
        cols = [c for c in a.columns if c != "geometry"]
        pd.testing.assert_frame_equal(a[cols], b[cols], obj=name)
        assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0).all(), name
    keep = {k: v for k, v in flat.manifest.items() if k != "created"}
    assert keep == {k: v for k, v in slow.manifest.items() if k != "created"}
    assert len(flat.buildings) > 400 and (flat.buildings["footprint_m2"] > 0).all()


def test_bundle_from_the_flat_reader_reads_its_buildings_when_asked(
    tmp_path: Path,
) -> None:
    bundle = import_expecting(tmp_path / "b", expect=EXPECT, osm=cityos.demo_osm_path("kouvola"))
    assert bundle.manifest["layers"]["buildings"] == len(bundle.buildings) > 2000
    assert list(bundle.layers) == list(LAYER_SCHEMAS)
    again = read_bundle(bundle.path).buildings
    pd.testing.assert_frame_equal(bundle.buildings, again)
    assert np.isclose(bundle.buildings["floor_area_m2"].sum(), again["floor_area_m2"].sum())
