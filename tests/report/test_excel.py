"""The Excel workbook read back with openpyxl equals indicators.parquet, numbers as numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

import cityos
from cityos.errors import BundleError
from cityos.healthcheck.results import write_results
from cityos.report import write_workbook
from tests.conftest import import_expecting


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xl")
    bundle = import_expecting(root / "b", osm=cityos.demo_osm_path())
    return write_results(cityos.checkup(bundle), root / "results")


def test_workbook_matches_parquet(results: Path, tmp_path: Path) -> None:
    out = write_workbook(results, tmp_path / "体检.xlsx")
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == [
        "城区 city",
        "街区 subdistrict",
        "社区 community",
        "问题清单 problems",
        "方法 methods",
    ]
    ind = pd.read_parquet(results / "indicators.parquet")
    for sheet, level in (("城区 city", "city"), ("社区 community", "community")):
        rows = list(wb[sheet].iter_rows(min_row=2, values_only=True))
        want = ind[ind["level"] == level]
        assert len(rows) == len(want)
        got = {(r[5], r[2]): r[6] for r in rows}
        for rec in want.itertuples(index=False):
            value = got[(rec.unit_id, rec.name_en)]
            if math.isnan(rec.value):
                assert value is None
            else:
                # rounded for people by the unit: % to 0.1, counts whole (the Parquet keeps all)
                dp = {"%": 1, "km/km²": 2}.get(rec.unit, 0 if rec.unit in ("个", "栋") else 2)
                assert isinstance(value, float | int) and value == round(rec.value, dp)
    problems = list(wb["问题清单 problems"].iter_rows(min_row=2, values_only=True))
    assert len(problems) == len(pd.read_csv(results / "problems.csv", encoding="utf-8-sig"))
    methods = dict(wb["方法 methods"].iter_rows(min_row=2, values_only=True))
    assert "OpenStreetMap" in methods["数据来源 credits"]


def test_incomplete_results_folder(tmp_path: Path) -> None:
    with pytest.raises(
        BundleError, match=r"not a health-check results folder \(no summary\.json\)"
    ):
        write_workbook(tmp_path, tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()
