"""The city bundle: schema checks on load that name the layer and column, atomic writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pytest

import cityos
from cityos.bundle import LAYER_SCHEMAS, empty_layer, read_bundle, write_bundle
from cityos.errors import BundleError, OutputExistsError
from tests.conftest import import_expecting


@pytest.fixture(scope="module")
def source_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("src") / "hel"
    import_expecting(out, osm=cityos.demo_osm_path("helsinki"))
    return out


@pytest.fixture
def bundle_copy(source_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source_bundle, tmp_path / "copy"))


def test_round_trip_keeps_layers(source_bundle: Path) -> None:
    b = read_bundle(source_bundle)
    assert set(b.layers) == set(LAYER_SCHEMAS)
    assert all(f.crs.to_epsg() == 4326 for f in b.layers.values())
    assert b.projected("walk_edges").crs.to_epsg() == 32635
    # lengths stored in the bundle are the lengths measured in its projected CRS
    assert b.walk_edges["length_m"].to_numpy() == pytest.approx(
        b.projected("walk_edges").length.to_numpy()
    )


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a city bundle"):
        read_bundle(tmp_path)


def test_other_schema_version(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["schema_version"] = 0
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema version 0"):
        read_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("layer", "change", "message"),
    [
        ("walk_edges", lambda f: f.drop(columns=["length_m"]), "layer 'walk_edges': missing column 'length_m'"),
        ("facilities", lambda f: f.assign(category=None), "layer 'facilities': column 'category' has missing values"),
        ("buildings", lambda f: f.assign(levels="six"), "layer 'buildings': column 'levels' must be float"),
        ("facilities", lambda f: f.assign(name=7), "layer 'facilities': column 'name' must be str"),
        ("buildings", lambda f: f.assign(use="castle"), "layer 'buildings': column 'use' has values \\['castle'\\]"),
        ("walk_nodes", lambda f: f.to_crs(3067), "layer 'walk_nodes': stored CRS must be EPSG:4326"),
        ("facilities", lambda f: f.set_geometry(f.to_crs(3067).buffer(10).to_crs(4326)), "layer 'facilities': column 'geometry' has \\['Polygon'\\]"),
    ],
)  # fmt: skip
def test_layer_schema_errors_name_layer_and_column(
    bundle_copy: Path, layer: str, change, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = bundle_copy / f"{layer}.parquet"
    change(gpd.read_parquet(path)).to_parquet(path)
    with pytest.raises(BundleError, match=message):
        read_bundle(bundle_copy)


def test_missing_layer_file(bundle_copy: Path) -> None:
    (bundle_copy / "green_spaces.parquet").unlink()
    with pytest.raises(BundleError, match="layer 'green_spaces' is missing"):
        read_bundle(bundle_copy)


def _layers(bundle: Path) -> dict[str, gpd.GeoDataFrame]:
    return read_bundle(bundle).layers


def test_failed_write_leaves_nothing(
    source_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layers = _layers(source_bundle)
    calls = {"n": 0}
    real = gpd.GeoDataFrame.to_parquet

    def failing(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *a, **kw)

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path / "new", layers, {"crs": "EPSG:32635"})
    assert list(tmp_path.iterdir()) == []


def test_failed_forced_write_keeps_the_old_bundle(
    bundle_copy: Path, source_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layers = _layers(source_bundle)
    before = (bundle_copy / "manifest.json").read_text()

    def failing(self, *a, **kw):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", failing)
    with pytest.raises(OSError):
        write_bundle(bundle_copy, layers, {"crs": "EPSG:32635"}, force=True)
    assert (bundle_copy / "manifest.json").read_text() == before
    assert sorted(p.name for p in bundle_copy.parent.iterdir()) == ["copy"]


def test_write_refuses_existing_without_force(bundle_copy: Path) -> None:
    with pytest.raises(OutputExistsError):
        write_bundle(bundle_copy, {n: empty_layer(n) for n in LAYER_SCHEMAS}, {"crs": "EPSG:32635"})


def test_write_validates_before_writing(tmp_path: Path) -> None:
    layers = {n: empty_layer(n) for n in LAYER_SCHEMAS}
    layers["units"] = layers["units"].drop(columns=["level"])
    with pytest.raises(BundleError, match="layer 'units': missing column 'level'"):
        write_bundle(tmp_path / "b", layers, {"crs": "EPSG:32635"})
    assert not (tmp_path / "b").exists()


def test_empty_layers_round_trip(tmp_path: Path) -> None:
    layers = {n: empty_layer(n) for n in LAYER_SCHEMAS}
    write_bundle(
        tmp_path / "b", layers, {"crs": "EPSG:32635", "bbox": [0, 0, 0, 0], "as_of": "2025-01-01"}
    )
    b = read_bundle(tmp_path / "b")
    assert all(len(f) == 0 for f in b.layers.values())


def test_projected_once_per_layer_and_the_callers_copy_their_own(
    source_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = read_bundle(source_bundle)
    calls: list[int] = []
    real = gpd.GeoDataFrame.to_crs

    def counting(self: gpd.GeoDataFrame, *args: object, **kwargs: object) -> gpd.GeoDataFrame:
        calls.append(len(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gpd.GeoDataFrame, "to_crs", counting)
    first = bundle.projected("buildings")
    first["levels"] = -1.0  # a caller's change stays in its copy
    second = bundle.projected("buildings")
    assert calls == [len(bundle.buildings)]
    assert (second["levels"] > 0).all()
    assert second.crs == bundle.crs and second.geometry.equals(first.geometry)
    # a replaced layer is projected afresh
    bundle.layers["buildings"] = bundle.buildings.iloc[:3]
    assert len(bundle.projected("buildings")) == 3
    assert calls == [len(first), 3]
