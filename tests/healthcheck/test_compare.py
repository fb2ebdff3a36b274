"""Year-over-year comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cityos.cli import main
from cityos.healthcheck.compare import compare_results
from cityos.healthcheck.engine import RESULTS_SCHEMA


def frame(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "system": "s",
                "level": "community",
                "unit_id": u,
                "indicator_id": i,
                "value": v,
                "direction": d,
                "status": "pass",
                "name_zh": i,
                "name_en": i,
                "target": np.nan,
                "unit": "%",
                "unit_name": u,
            }
            for u, i, v, d in rows
        ]
    )


def test_trends_follow_direction() -> None:
    old = frame([("A", "cov", 50.0, "higher"), ("A", "hazards", 3.0, "lower"), ("B", "cov", 70.0, "higher"),
                 ("B", "hazards", 1.0, "lower"), ("C", "cov", np.nan, "higher")])  # fmt: skip
    new = frame([("A", "cov", 60.0, "higher"), ("A", "hazards", 1.0, "lower"), ("B", "cov", 65.0, "higher"),
                 ("B", "hazards", 1.0, "lower"), ("C", "cov", 40.0, "higher"), ("D", "cov", 10.0, "higher")])  # fmt: skip
    got = compare_results(old, new).set_index(["unit_id", "indicator_id"])
    assert got.loc[("A", "cov"), "trend"] == "improved"
    assert got.loc[("A", "hazards"), "trend"] == "improved"  # fewer problems
    assert got.loc[("B", "cov"), "trend"] == "worsened"
    assert got.loc[("B", "hazards"), "trend"] == "unchanged"
    assert got.loc[("C", "cov"), "trend"] == "not_comparable"  # no data last year
    assert got.loc[("D", "cov"), "trend"] == "not_comparable"  # a new unit
    assert got.loc[("A", "cov"), "change"] == pytest.approx(10.0)


def test_change_within_the_unit_tolerance_is_unchanged() -> None:
    # the policy's tolerance for % is 0.05 points: float noise and a 0.04-point change read as
    # unchanged, 0.06 points as a change; a count changes with any whole case
    old = frame(
        [("A", "cov", 50.0, "higher"), ("B", "cov", 50.0, "higher"), ("C", "cov", 50.0, "higher")]
    )
    new = frame(
        [
            ("A", "cov", 50.0 + 1e-12, "higher"),
            ("B", "cov", 50.04, "higher"),
            ("C", "cov", 50.06, "higher"),
        ]
    )
    got = compare_results(old, new).set_index("unit_id")["trend"].to_dict()
    assert got == {"A": "unchanged", "B": "unchanged", "C": "improved"}


def results_folder(folder: Path, table: pd.DataFrame) -> Path:
    """A minimal results folder of the current results schema."""
    folder.mkdir()
    table.to_parquet(folder / "indicators.parquet")
    (folder / "problems.csv").write_text("unit_id\n", "utf-8")
    (folder / "summary.json").write_text(json.dumps({"results_schema": RESULTS_SCHEMA}), "utf-8")
    return folder


def test_cli_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in (("old", 50.0), ("new", 75.0)):
        results_folder(tmp_path / name, frame([("A", "cov", value, "higher")]))
    out = tmp_path / "change.csv"
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "improved" in text
    assert pd.read_csv(out)["trend"].tolist() == ["improved"]
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "missing")]) == 2
    assert "not a health-check results folder" in capsys.readouterr().err
    # a folder of the first results schema (no results_schema in summary.json) is refused
    (tmp_path / "new" / "summary.json").write_text("{}", "utf-8")
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new")]) == 2
    assert "results schema 1" in capsys.readouterr().err
