"""Historic tickets in (Chinese headers, all rows or none) and tickets out (CSV, XLSX,
GeoPackage; never the reporters' data), on a live server's store."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from cityos.cli import main
from tests.web.conftest import Server, toy_point


def test_import_then_rates_and_export(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lon, lat = toy_point(250, 100)
    table = pd.DataFrame({
        "工单编号": ["BJ-1", "BJ-2", "BJ-3"], "诉求类别": ["noise", "garbage", "road_damage"],
        "受理时间": ["2025-03-02 09:00", "2025-03-05 14:30", "2025-03-20 08:00"],
        "纬度": [lat, lat, ""], "经度": [lon, lon, ""], "地址": ["", "", "东华门大街 1 号"],
        "诉求内容": ["夜间施工", "垃圾满溢", "井盖缺失"], "办结时间": ["2025-03-04 10:00", "", "2025-03-21 09:00"],
        "是否解决": ["是", "", "否"], "满意度": ["满意", "", "不满意"],
    })  # fmt: skip
    src = tmp_path / "历史工单.xlsx"
    table.to_excel(src, index=False)
    assert (
        main(["hotline", "import", "--db", server.db, "--bundle", str(server.bundle), str(src)])
        == 0
    )
    assert "imported 3 tickets" in capsys.readouterr().out
    out = tmp_path / "tickets.gpkg"
    assert (
        main(
            ["hotline", "export", "--db", server.db, "--out", str(out), "--month", "2025-03", "-q"]
        )
        == 0
    )
    got = gpd.read_file(out).set_index("description")
    assert len(got) == 3 and got.loc["夜间施工", "state"] == "closed_resolved"
    assert (
        got.loc["垃圾满溢", "state"] == "dispatched"
        and got.loc["井盖缺失", "state"] == "closed_unresolved"
    )
    assert got.loc["垃圾满溢", "community_id"] == "C1" and got.loc[
        "垃圾满溢", "department"
    ].startswith("subdistrict:")
    assert not {"phone", "email", "first_name"} & set(got.columns)
    assert (
        main(["hotline", "rates", "--db", server.db, "--month", "2025-03", "--level", "department"])
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "environment" in printed
    )  # the noise ticket's department: resolution and satisfaction 100


def test_import_refuses_bad_rows_all_at_once(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(
        "service_code,requested_at,lat,lon\nnoise,2025-03-01,39.9,116.4\nspaceport,2025-03-01,,\nnoise,yesterday,,\n",
        "utf-8",
    )
    before = main(["hotline", "export", "--db", server.db, "--out", str(tmp_path / "a.csv"), "-q"])
    count = len(pd.read_csv(tmp_path / "a.csv"))
    assert before == 0
    assert (
        main(["hotline", "import", "--db", server.db, "--bundle", str(server.bundle), str(src)])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 rows are unusable" in err[0]
    assert (
        "line 3: unknown service_code 'spaceport'" in err[0]
        and "line 4: 'yesterday' is not a date-time" in err[0]
    )
    assert (
        main(["hotline", "export", "--db", server.db, "--out", str(tmp_path / "b.csv"), "-q"]) == 0
    )
    assert len(pd.read_csv(tmp_path / "b.csv")) == count  # nothing half-imported
