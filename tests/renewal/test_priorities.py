"""Renewal priorities: scores worked out by hand on a small indicator table, the weights file,
and the command on a real health check (Helsinki)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import cityos
from cityos.cli import main
from cityos.errors import ConfigError
from cityos.healthcheck.results import write_results
from cityos.renewal import load_weights, priorities
from cityos.renewal.priorities import PRIORITY_COLUMNS, PRIORITY_FILES
from tests.conftest import import_expecting

COV = "coverage of population within 300 m (network) of kindergarten"


def _row(uid: str, ind: str, status: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "level": "community", "unit_id": uid, "unit_name": f"{uid}社区", "indicator_id": ind,
        "name_zh": ind, "name_en": ind, "unit": "%", "status": status, "confirmed": True,
        "method": "x", "numerator": float("nan"), "denominator": float("nan"),
        "value": float("nan"), "target": float("nan"), "target_op": ">=", "dimension": "设施完善",
        "denominator_kind": "residents" if kw.get("method") == COV else "",
    }  # fmt: skip
    return base | kw


@pytest.fixture
def table() -> tuple[pd.DataFrame, pd.DataFrame]:
    ind = pd.DataFrame([
        # 40 of 100 residents covered against ≥ 80 %: severity 0.5, 60 affected, weight 1.5 → 45
        _row("C1", "pop_kg", "fail", method=COV, numerator=40.0, denominator=100.0, value=40.0, target=80.0),
        # 2 hazardous buildings, implicit target 0: severity 2 / 5, all 100 residents, weight 3 → 120
        _row("C1", "housing_structural_hazard", "fail", value=2.0, target=0.0, target_op="<=",
             unit="栋", dimension="安全耐久"),
        _row("C2", "pop_kg", "pass", method=COV, numerator=45.0, denominator=50.0, value=90.0, target=80.0),
        # unconfirmed threshold: 4 against ≥ 8 → severity 0.5, 50 residents, weight 1.2 → 30
        _row("C2", "road_network_density", "fail", value=4.0, target=8.0, dimension="交通便捷",
             confirmed=False, unit="km/km²"),
        _row("C2", "housing_gas_hazard", "no_data"),
        _row("C3", "pop_kg", "no_data"),
    ])  # fmt: skip
    pop = pd.DataFrame(
        {"level": "community", "unit_id": ["C1", "C2", "C3"], "population": [100.0, 50.0, 0.0]}
    )
    return ind, pop


def test_scores_by_hand(table: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ind, pop = table
    ranked, parts = priorities(ind, pop, load_weights())
    assert tuple(ranked.columns) == PRIORITY_COLUMNS
    got = ranked.set_index("unit_id")
    # C3 has no measured indicator: no score and no rank, never "last with 0"
    assert got.loc[["C1", "C2"], "score"].to_dict() == pytest.approx({"C1": 165.0, "C2": 30.0})
    assert np.isnan(got.loc["C3", "score"]) and pd.isna(got.loc["C3", "rank"])
    assert got.loc[["C1", "C2"], "rank"].to_dict() == {"C1": 1, "C2": 2}
    assert got.loc["C3", "explanation_en"].startswith("no data: no indicator measured")
    assert got.loc["C2", ["measured", "indicators", "no_data"]].tolist() == [2, 3, 1]
    assert got.loc["C1", "top_indicator"] == "housing_structural_hazard"
    assert got.loc["C1", "explanation"].startswith(
        "housing_structural_hazard：2栋（目标<=0栋），影响100人，占73%；pop_kg：40.0%（目标>=80.0%）"
    )
    # values for people rounded by their unit: percent to 0.1, counts whole
    assert "pop_kg: 40.0 % (target >=80.0 %), 60 residents, 27%" in got.loc["C1", "explanation_en"]
    assert (got.loc["C2", "unconfirmed_share"], got.loc["C2", "no_data"]) == (1.0, 1)
    assert got.loc["C2", "score_per_1000_residents"] == pytest.approx(600.0)
    kg = parts[parts["indicator_id"] == "pop_kg"].iloc[0]
    assert (kg["affected"], kg["affected_basis"], kg["severity"]) == (
        60.0,
        "residents not covered",
        0.5,
    )


def test_weights_file_overrides(table: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    ind, pop = table
    own = tmp_path / "w.toml"
    own.write_text('[score]\nseverity = "flat"\nunconfirmed_factor = 0.0\n', "utf-8")
    ranked, _ = priorities(ind, pop, load_weights(own))
    # flat severity: 1.5 × 60 + 3 × 100; the unconfirmed road density weighs nothing
    assert ranked.set_index("unit_id")["score"].iloc[:2].to_dict() == pytest.approx(
        {"C1": 390.0, "C2": 0.0}
    )


def test_a_city_with_nothing_failing_scores_zero_everywhere() -> None:
    ind = pd.DataFrame([_row("C1", "pop_kg", "pass", method=COV, numerator=90.0, denominator=100.0,
                             value=90.0, target=80.0), _row("C2", "pop_kg", "no_data")])  # fmt: skip
    pop = pd.DataFrame({"level": "community", "unit_id": ["C1", "C2"], "population": [100.0, 50.0]})
    ranked, _ = priorities(ind, pop, load_weights())
    got = ranked.set_index("unit_id")
    assert got.loc["C1", "score"] == 0.0 and got.loc["C1", "rank"] == 1
    assert got.loc["C1", "failing"] == 0 and got.loc["C1", "top_indicator"] == ""
    assert pd.isna(got.loc["C2", "score"]) and pd.isna(got.loc["C2", "rank"])  # not measured


def test_unknown_severity_or_residents_are_skipped_and_counted() -> None:
    ind = pd.DataFrame([
        # no target to measure the shortfall against: severity unknown → skipped, not 1
        _row("C1", "a", "fail", value=5.0, target=float("nan"), unit="个"),
        _row("C1", "b", "fail", value=40.0, target=80.0, unit="%"),
        # C2: its residents are unknown (NaN), so a per-unit indicator cannot weigh them
        _row("C2", "b", "fail", value=40.0, target=80.0, unit="%"),
        *[_row("C2", f"n{k}", "no_data") for k in range(3)],
    ])  # fmt: skip
    pop = pd.DataFrame(
        {"level": "community", "unit_id": ["C1", "C2"], "population": [100.0, np.nan]}
    )
    ranked, parts = priorities(ind, pop, load_weights())
    got = ranked.set_index("unit_id")
    # C1: only b counts: severity 0.5 × 100 residents × weight 1.5 (设施完善)
    assert got.loc["C1", "score"] == pytest.approx(75.0) and got.loc["C1", "skipped"] == 1
    assert got.loc["C2", "score"] == 0.0 and got.loc["C2", "skipped"] == 1
    assert parts["skipped"].tolist() == [True, False, True]
    # C2 is measured on 1 of 4 indicators (< half): the explanation says its rank rests on that
    assert "rank rests on 1 of 4 indicators measured" in got.loc["C2", "explanation_en"]
    assert "排名仅依据1/4项有数据的指标" in got.loc["C2", "explanation"]
    assert "rests on" not in got.loc["C1", "explanation_en"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[score]\nseverity = "max"\n', "severity"),
        ('[dimension]\n"安全耐久" = -1\n', ">= 0"),
        ("[weights]\nx = 1\n", "unknown tables"),
        ("[score\n", "not valid TOML"),
    ],
)
def test_bad_weights(tmp_path: Path, text: str, message: str) -> None:
    own = tmp_path / "w.toml"
    own.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=message):
        load_weights(own)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("renew")
    bundle = import_expecting(root / "b", osm=cityos.demo_osm_path())
    return write_results(cityos.checkup(bundle), root / "results")


def test_cli_on_helsinki(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prio"
    assert main(["renew", str(results), "--out", str(out)]) == 0
    assert "community:" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(PRIORITY_FILES)
    table = pd.read_csv(out / "priorities.csv", encoding="utf-8-sig")
    detail = pd.read_csv(out / "priorities_detail.csv", encoding="utf-8-sig")
    # every score is the sum of its traceable parts, and the parts are the failing rows
    sums = detail.groupby(["level", "unit_id"])["contribution"].sum()
    keyed = table.set_index(["level", "unit_id"])["score"]
    assert keyed[keyed > 0].to_dict() == pytest.approx(sums.to_dict())
    ind = pd.read_parquet(results / "indicators.parquet")
    fails = ind[(ind["status"] == "fail") & ind["level"].isin(["community", "subdistrict"])]
    assert len(detail) == len(fails) > 0
    assert set(table["level"]) == {"community", "subdistrict"}
    assert (table.groupby("level")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    layer = gpd.read_file(out / "priorities.gpkg", layer="community")
    assert len(layer) == (table["level"] == "community").sum() and layer["rank"].notna().all()
    meta = json.loads((out / "priorities.json").read_text("utf-8"))
    assert meta["weights"] == "built-in weights.toml" and meta["confirmed"] is False
    # again without --force: one line, nothing replaced
    assert main(["renew", str(results), "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_cli_incomplete_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["renew", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cityos: error:") and "run `cityos checkup`" in err and "\n" not in err
