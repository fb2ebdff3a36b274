"""The residents' satisfaction survey on a toy city of two communities of 50 estimated residents
each (five 400 m² apartment blocks at 40 m² per person): the community score, its margin of
error with the finite-population correction, a community below the respondent minimum as
no_data with the count, and the city score from the communities that have one — every figure
worked out here from the answers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from cityos.cli import main
from tests.conftest import toy_street_city


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_street_city(tmp_path_factory.mktemp("survey"))


def test_satisfaction_per_community_and_city(toy: Path, tmp_path: Path) -> None:
    forms = tmp_path / "forms"
    assert (
        main(["template", str(toy), "--register", "satisfaction", "--out", str(forms), "-q"]) == 0
    )
    header = pd.read_csv(forms / "satisfaction.csv", encoding="utf-8-sig").columns
    assert header[1] == "所在社区单元编号" and len(header) == 16
    rows = ([("C1", "满意")] * 20 + [("C1", "一般")] * 10 + [("C1", "不了解")] * 3
            + [("C2", "非常满意")] * 10)  # fmt: skip
    survey = tmp_path / "survey.csv"
    survey.write_text("respondent_id,unit_id,sat_community_facilities\n" + "".join(
        f"Q{k},{u},{a}\n" for k, (u, a) in enumerate(rows)), encoding="utf-8")  # fmt: skip
    out = tmp_path / "check"
    assert main(["checkup", str(toy), "--system", "satisfaction", "--register",
                 f"satisfaction={survey}", "--out", str(out), "-q"]) == 0  # fmt: skip
    ind = pd.read_parquet(out / "indicators.parquet")
    ind = ind[ind["indicator_id"] == "sat_community_facilities"].set_index(["level", "unit_id"])
    # C1: 20 × 75 and 10 × 50 (不了解 is no answer)
    mean = (20 * 75 + 10 * 50) / 30
    sd = math.sqrt((20 * (75 - mean) ** 2 + 10 * (50 - mean) ** 2) / 29)
    moe = 1.96 * sd / math.sqrt(30) * math.sqrt((50 - 30) / (50 - 1))
    c1 = ind.loc[("community", "C1")]
    assert (c1["value"], c1["numerator"], c1["status"]) == (pytest.approx(mean), 30, "no_target")
    assert f"30 respondents, ± {moe:.1f} (95 %)" in c1["note"]
    c2 = ind.loc[("community", "C2")]
    assert c2["status"] == "no_data" and "10 respondents, fewer than the 30 needed" in c2["note"]
    (city,) = [r for (lv, _), r in ind.iterrows() if lv == "city"]
    assert city["value"] == pytest.approx(mean) and "1 communities, 30 respondents" in city["note"]
    assert city["dimension"] == "设施完善"


def test_a_bad_answer_is_named(toy: Path, tmp_path: Path) -> None:
    survey = tmp_path / "survey.csv"
    survey.write_text(
        "respondent_id,unit_id,sat_city_smart\nQ1,C1,很好\nQ2,C9,满意\n", encoding="utf-8"
    )
    report = tmp_path / "problems.csv"
    assert (
        main(
            ["register", "check", str(toy), f"satisfaction={survey}", "--report", str(report), "-q"]
        )
        == 2
    )
    got = pd.read_csv(report, encoding="utf-8-sig")
    assert got["问题 problem"].tolist() == [
        "not one of the allowed values",
        "no unit_id 'C9' in the bundle",
    ]
