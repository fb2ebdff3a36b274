"""From the hotline to the health check: requests posted to a live server become hotspot
tables and a register, and `cityos checkup --system hotline --register hotline=…` reports
requests per 1,000 residents and the unresolved share per community (worked out by hand: each
toy community has 50 residents)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cityos.cli import main
from tests.conftest import expect_warnings
from tests.web.conftest import Server, toy_point


def test_requests_become_health_check_indicators(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c1 = [toy_point(100 + 100 * i, 100) for i in range(3)]  # three in 东社区 (C1), 100 m apart
    c2 = toy_point(750, 100)
    ids = [server.post(service_code="illegal_parking", lat=lat, long=lon).json()[0]["service_request_id"]
           for lon, lat in [*c1, c2]]  # fmt: skip
    for action, who, body in [("sign", "admin", {}), ("handle", "admin", {}),
                              ("call_back", "intake", {"reached": True, "resolved": False}),
                              ("close_unresolved", "intake", {})]:  # fmt: skip
        assert server.act(ids[0], action, who, **body).status_code == 200, action
    hot = tmp_path / "hot"
    assert (
        main(
            [
                "hotline",
                "hotspots",
                "--db",
                server.db,
                "--bundle",
                str(server.bundle),
                "--out",
                str(hot),
                "-q",
            ]
        )
        == 0
    )
    reg = pd.read_csv(hot / "hotline_units.csv", encoding="utf-8-sig").set_index("unit_id")
    assert reg.loc["C1", ["requests", "closed", "unresolved"]].tolist() == [3, 1, 1]
    assert reg.loc["C2", "requests"] == 1 and reg.loc["C1", "requests:illegal_parking"] == 3
    assert {"counts_weekly.csv", "clusters.csv", "monthly_theme.csv", "trends.csv"} <= {
        p.name for p in hot.iterdir()
    }
    out = tmp_path / "check"
    with expect_warnings():
        code = main(["checkup", str(server.bundle), "--system", "hotline", "--register",
                     f"hotline={hot / 'hotline_units.csv'}", "--out", str(out), "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ind = pd.read_parquet(out / "indicators.parquet")
    per = ind[
        (ind["indicator_id"] == "hotline_requests_per_1000") & (ind["level"] == "community")
    ].set_index("unit_id")
    # residents come from the footprints measured in UTM: 50 to within 1e-4
    assert per.loc["C1", "value"] == pytest.approx(3 / 50 * 1000, rel=1e-4)
    assert per.loc["C2", "value"] == pytest.approx(20.0, rel=1e-4)
    assert per.loc["C1", "status"] == "no_target"
    share = ind[
        (ind["indicator_id"] == "hotline_unresolved_share") & (ind["level"] == "community")
    ].set_index("unit_id")
    assert share.loc["C1", "value"] == pytest.approx(100.0)
    assert share.loc["C2", "status"] == "no_data"  # nothing closed there: unmeasured, never 0
    city = ind[(ind["indicator_id"] == "hotline_requests_per_1000") & (ind["level"] == "city")]
    assert city["value"].iloc[0] == pytest.approx(4 / 100 * 1000, rel=1e-4)
