"""``import_city`` on the real Chinese test data: Beijing subdistrict polygons (GeoPackage and the
other GIS formats), Shanghai POIs (CSV, XLSX, Amap type paths, GCJ-02), registers and buildings."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import cityos
from cityos.errors import InputError, OutputExistsError
from cityos.importer import utm_crs
from cityos.sources import china
from tests.conftest import expect_warnings, import_expecting

GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def beijing(shared_data: Path) -> Path:
    return shared_data / "beijing-subdistricts" / "beijing_subdistricts.gpkg"


@pytest.fixture(scope="module")
def shanghai(shared_data: Path) -> Path:
    return shared_data / "shanghai-poi"


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_beijing_units_from_geopackage(tmp_path: Path, beijing: Path) -> None:
    b = import_expecting(tmp_path / "b", units=[f"街道={beijing}"])
    raw = gpd.read_file(beijing)
    u = b.units
    assert len(u) == len(raw) == 331
    assert set(u["level"]) == {"subdistrict"}
    assert list(u["name"]) == list(raw["subdistrict"])  # the column named after the level
    assert u["population"].astype(float).sum() == pytest.approx(raw["population"].sum())
    assert u["unit_id"].is_unique
    assert b.crs == "EPSG:32650"  # Beijing lies in UTM zone 50N
    assert b.as_of is not None and b.manifest["as_of_source"] == "import date"


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".parquet"])
def test_units_from_other_gis_formats(tmp_path: Path, beijing: Path, suffix: str) -> None:
    raw = gpd.read_file(beijing).head(20)
    path = tmp_path / f"units{suffix}"
    if suffix == ".parquet":
        raw.to_parquet(path)
    elif suffix == ".shp":  # the Shapefile format itself cuts column names to 10 characters
        with expect_warnings("truncated when saved to ESRI Shapefile", "laundered field name"):
            raw.to_file(path)
    else:
        raw.to_file(path)
    b = import_expecting(tmp_path / "b", units=[("subdistrict", path)])
    assert list(b.units["name"]) == list(raw["subdistrict"])
    assert np.allclose(
        b.units.geometry.to_crs(3857).area, raw.geometry.to_crs(3857).area, rtol=1e-9
    )


def test_level_column_with_chinese_values(tmp_path: Path, beijing: Path) -> None:
    raw = gpd.read_file(beijing).head(5)
    raw["level"] = ["街道", "街道", "社区", "community", "城区"]
    path = tmp_path / "u.gpkg"
    raw.to_file(path)
    b = import_expecting(tmp_path / "b", units=[path])
    assert list(b.units["level"]) == [
        "subdistrict",
        "subdistrict",
        "community",
        "community",
        "city",
    ]


def test_units_without_level_are_an_error(tmp_path: Path, beijing: Path) -> None:
    with pytest.raises(InputError, match="unit level unknown"):
        import_expecting(tmp_path / "b", units=[beijing])
    assert not (tmp_path / "b").exists()


def test_shanghai_kindergartens_from_csv(tmp_path: Path, shanghai: Path) -> None:
    rows = _csv_rows(shanghai / "kindergarten.csv")
    b = import_expecting(tmp_path / "b", facilities=[shanghai / "kindergarten.csv"])
    f = b.facilities
    kg = f[f["category"] == "kindergarten"]
    assert len(kg) == len(rows) == 2284  # every row typed 科教文化服务;学校;幼儿园
    assert set(kg["rule"]) == {"kindergarten.amap"}
    assert list(kg["name"]) == [r["name"] for r in rows]  # Chinese text intact
    lon = np.array([float(r["lon"]) for r in rows])
    assert np.allclose(kg.geometry.x.to_numpy(), lon)
    assert b.crs == "EPSG:32651"  # Shanghai lies in UTM zone 51N


def test_amap_type_paths_map_row_by_row(tmp_path: Path, shanghai: Path) -> None:
    rows = _csv_rows(shanghai / "school.csv")
    b = import_expecting(tmp_path / "b", facilities=[shanghai / "school.csv"])
    f = b.facilities
    got = f.groupby("feature_id")["category"].apply(set).to_dict()
    expect = {"科教文化服务;学校;幼儿园": "kindergarten", "科教文化服务;学校;小学": "primary_school",
              "科教文化服务;学校;高等院校": "university"}  # fmt: skip
    checked = 0
    for i, row in enumerate(rows):
        if row["type"] in expect:
            assert expect[row["type"]] in got[f"school:{i}"], row
            checked += 1
        if row["type"] == "科教文化服务;学校;中学":
            cats = got[f"school:{i}"]
            assert ("high_school" in cats) == (
                "高级中学" in row["name"] or row["name"].endswith("高中")
            ), row
    assert checked > 5000


def test_gcj02_csv_converts_back_to_wgs84_under_1m(tmp_path: Path, shanghai: Path) -> None:
    frame = pd.read_csv(shanghai / "urban.csv", dtype={"lon": float, "lat": float})
    glon, glat = china.wgs84_to_gcj02(frame["lon"], frame["lat"])
    shifted = frame.assign(lon=glon, lat=glat)
    path = tmp_path / "metro_gcj02.csv"
    shifted.to_csv(path, index=False)
    b = import_expecting(tmp_path / "b", facilities=[path], crs="gcj02")
    f = b.facilities[b.facilities["category"] == "rail_station"]
    assert len(f) == len(frame)
    d = GEOD.inv(
        f.geometry.x.to_numpy(),
        f.geometry.y.to_numpy(),
        frame["lon"].to_numpy(),
        frame["lat"].to_numpy(),
    )[2]
    assert np.max(d) < 1.0
    # without --crs the same file is ~500 m off: the conversion matters
    raw = GEOD.inv(glon, glat, frame["lon"].to_numpy(), frame["lat"].to_numpy())[2]
    assert np.median(raw) > 100
    assert b.manifest["sources"][0]["crs"] == "gcj02"


def test_xlsx_and_category_column(tmp_path: Path) -> None:
    path = tmp_path / "register_pois.xlsx"
    pd.DataFrame(
        {
            "名称": ["和平里养老驿站", "安定门消防站"],
            "经度": [116.41, 116.40],
            "纬度": [39.95, 39.94],
            "category": ["elderly_care", "fire_station"],
        }
    ).to_excel(path, index=False)
    b = import_expecting(tmp_path / "b", facilities=[path])
    f = b.facilities.sort_values("category")
    assert list(f["category"]) == ["elderly_care", "fire_station"]
    assert list(f["rule"]) == ["file.category"] * 2
    assert list(f["name"]) == ["和平里养老驿站", "安定门消防站"]


def test_unknown_category_column_value(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("name,lon,lat,category\nA,116.4,39.9,spaceport\n", "utf-8")
    with pytest.raises(InputError, match="unknown categories"):
        import_expecting(tmp_path / "b", facilities=[path])


def test_registers_are_kept(tmp_path: Path, beijing: Path) -> None:
    # a register cityos has no schema for is kept as the table it is
    reg = tmp_path / "lifts.csv"
    reg.write_text(
        "building_id,lift_inspected,inspected\nB001,1,2025-05-01\nB002,0,2025-05-02\n", "utf-8"
    )
    b = import_expecting(tmp_path / "b", units=[("subdistrict", beijing)], registers={"lifts": reg})
    table = b.registers["lifts"]
    assert list(table["building_id"]) == ["B001", "B002"]  # text, leading letters and zeros kept
    kinds = [s["kind"] for s in b.manifest["sources"]]
    assert kinds == ["units", "register"]
    assert b.manifest["sources"][1]["rows"] == 2


def test_building_footprints_from_file(tmp_path: Path) -> None:
    to_wgs = pyproj.Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    squares = [
        shapely.box(448_000 + 50 * i, 4_417_000, 448_020 + 50 * i, 4_417_010) for i in range(3)
    ]
    frame = gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c"],
            "floors": [3, None, 18],
            "use": ["住宅", "non_residential", "residential"],
            "闲置": ["否", "是", None],
        },
        geometry=[
            shapely.transform(s, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
            for s in squares
        ],
        crs="EPSG:4326",
    )
    path = tmp_path / "b.gpkg"
    frame.to_file(path)
    b = import_expecting(
        tmp_path / "out", buildings=[path], measure_crs="EPSG:32650", levels_default=4
    )
    got = b.buildings.set_index("building_id")
    assert list(got["use"]) == ["residential", "non_residential", "residential"]
    assert list(got["levels"]) == [3.0, 4.0, 18.0]
    assert list(got["levels_source"]) == ["file", "default", "file"]
    assert got["footprint_m2"].to_numpy() == pytest.approx([200.0] * 3, rel=1e-6)
    assert got.loc["c", "floor_area_m2"] == pytest.approx(200.0 * 18, rel=1e-6)
    assert list(got["vacancy"].fillna("-")) == ["-", "vacant", "-"]


def test_outside_and_empty_category_warnings(tmp_path: Path, beijing: Path, shanghai: Path) -> None:
    with expect_warnings(
        "449 of 449 facilities lie outside", r"no facilities in .*kindergarten"
    ) as record:
        b = cityos.import_city(
            tmp_path / "b", units=[("subdistrict", beijing)], facilities=[shanghai / "urban.csv"]
        )
    assert b.manifest["warnings"] == [str(w.message) for w in record]


def test_existing_output_needs_force(tmp_path: Path, beijing: Path) -> None:
    out = tmp_path / "b"
    import_expecting(out, units=[("subdistrict", beijing)])
    with pytest.raises(OutputExistsError, match="--force"):
        import_expecting(out, units=[("subdistrict", beijing)])
    b = import_expecting(out, units=[("subdistrict", beijing)], force=True, as_of="2024-12-31")
    assert b.as_of == "2024-12-31"
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary folders left


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [(24.94, 60.17, "EPSG:32635"), (116.4, 39.9, "EPSG:32650"), (121.47, 31.23, "EPSG:32651"),
     (-58.4, -34.6, "EPSG:32721"), (179.9, 0.0, "EPSG:32660"), (-180.0, 10.0, "EPSG:32601")],
)  # fmt: skip
def test_utm_zone(lon: float, lat: float, expected: str) -> None:
    assert utm_crs(lon, lat) == expected


def test_demo_helsinki_end_to_end(tmp_path: Path) -> None:
    b = import_expecting(tmp_path / "hel", osm=cityos.demo_osm_path())
    assert b.crs == "EPSG:32635"
    m = b.manifest
    assert m["layers"] == {k: len(v) for k, v in b.layers.items()}
    assert m["facility_categories"] == b.facilities["category"].value_counts().to_dict()
    src = m["sources"][0]
    assert src["kind"] == "osm" and len(src["sha256"]) == 64
    assert "OpenStreetMap contributors" in m["attribution"][0]
    # the extract's bounding box in the PBF header contains every stored feature
    w, s, e, n = m["bbox"]
    assert 24.9 < w < e < 25.0 and 60.1 < s < n < 60.2
