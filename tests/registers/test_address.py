"""A building-keyed register may name its buildings by address: the OSM import keeps
``addr:*`` (street and house number), the check matches addresses without regard to spaces or
full-width forms, and an address no building has — or several have — is named; a bundle written
before the address column existed still reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cityos
from cityos.cli import main
from tests.conftest import TOY_CRS, ToyOsm, import_expecting


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("addr")
    t = ToyOsm()
    a, m, b = t.node(0, 0), t.node(200, 0), t.node(400, 0)
    t.way([a, m, b], highway="residential", name="大街")
    for i, (x, number) in enumerate([(20, "1号"), (80, "2号"), (140, "3号"), (260, "3号")]):
        t.ring(x, 20, x + 10, 30, building="apartments", building__levels="4", name=f"A{i + 1}",
               addr__street="大街", addr__housenumber=number)  # fmt: skip
    import_expecting(root / "b", osm=t.write(root / "toy.osm"), measure_crs=TOY_CRS)
    return root / "b"


def test_registers_by_address(toy: Path, tmp_path: Path) -> None:
    b = cityos.read_bundle(toy)
    ids = b.buildings.set_index("name")["building_id"]
    assert b.buildings.set_index("name").loc["A1", "address"] == "大街 1号"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "地址,存在结构安全隐患\n大街１号,是\n大街 2号,否\n大街 3号,是\n小巷 9号,否\n",
        encoding="utf-8",
    )
    report = tmp_path / "problems.csv"
    assert (
        main(["register", "check", str(toy), f"housing={bad}", "--report", str(report), "-q"]) == 2
    )
    got = pd.read_csv(report, encoding="utf-8-sig")
    assert list(zip(got["行 row"], got["问题 problem"], strict=True)) == [
        (4, "several buildings have this address"), (5, "no building of the bundle has this address")]  # fmt: skip
    good = tmp_path / "good.csv"
    good.write_text("地址,存在结构安全隐患\n大街１号,是\n大街 2号,否\n", encoding="utf-8")
    assert main(["register", "add", str(toy), f"housing={good}", "-q"]) == 0
    reg = cityos.read_bundle(toy).registers["housing"]
    assert reg[["building_id", "structural_hazard"]].values.tolist() == [
        [ids["A1"], "是"],
        [ids["A2"], "否"],
    ]


def test_a_bundle_without_the_address_column_still_reads(toy: Path, tmp_path: Path) -> None:
    import shutil

    import geopandas as gpd

    old = tmp_path / "old"
    shutil.copytree(toy, old)
    layer = gpd.read_parquet(old / "buildings.parquet").drop(columns="address")
    layer.to_parquet(old / "buildings.parquet")
    b = cityos.read_bundle(old)
    assert b.buildings["address"].isna().all() and len(b.buildings) == 4
