"""The housing-safety register: a building's current state from its inspection events, the ten
住房 flags from it, and the next inspection due by the frequency table — checked by hand on six
buildings on 2026-12-01."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

import cityos
from cityos.registers.housing import housing_register, load_inspection_rules, next_due

AS_OF = dt.date(2026, 12, 1)
COLUMNS = ["building_id", "use", "multi_owner", "self_built", "business_use", "year_built",
           "inspection_kind", "inspection_date", "superstructure", "envelope", "appraisal_grade",
           "rectification_status", "rectification_date", "gas_hazard"]  # fmt: skip
EVENTS = pd.DataFrame([
    # B1: multi-owner housing of 1990; a hazard in 2019, then appraised B in 2023
    ["B1", "住宅", "是", "否", "否", "1990", "定期体检", "2019-05-10", "隐患", "无异常", "", "", "", "是"],
    ["B1", "", "", "", "", "", "安全鉴定", "2023-06-01", "", "", "B", "", "", "否"],
    # B2: housing of 1980, only patrolled: a façade hazard, never periodically inspected
    ["B2", "住宅", "否", "否", "否", "1980", "日常巡查", "2025-03-01", "", "隐患", "", "", "", ""],
    # B3: a business self-built house of 2010, a hazard in 2020 rectified in 2021
    ["B3", "经营", "否", "是", "是", "2010", "定期体检", "2020-09-15", "隐患", "", "", "", "", ""],
    ["B3", "", "", "", "", "", "日常巡查", "2021-04-01", "", "", "", "已销号", "2021-04-01", ""],
    # B4: appraised D in June 2026
    ["B4", "住宅", "否", "否", "否", "1975", "安全鉴定", "2026-06-01", "", "", "D", "", "", ""],
    # B5: housing of 2015; B6: housing of unknown age
    ["B5", "住宅", "否", "否", "否", "2015", "日常巡查", "2026-01-10", "无异常", "无异常", "", "", "", ""],
    ["B6", "住宅", "否", "否", "否", "", "日常巡查", "2026-01-10", "", "", "", "", "", ""],
], columns=COLUMNS)  # fmt: skip


def test_the_housing_flags_follow_the_latest_event_that_says() -> None:
    got = housing_register(EVENTS).set_index("building_id")
    assert got["structural_hazard"].to_dict() == {
        "B1": "否",  # the 2023 appraisal (B) is newer than the 2019 hazard
        "B2": "",  # nothing said about the structure
        "B3": "否",  # the 2020 hazard was rectified (已销号) in 2021
        "B4": "是",  # grade D
        "B5": "",  # the superstructure was seen, the foundation not: unknown
        "B6": "",
    }
    assert got["envelope_hazard"].to_dict() == {
        "B1": "否", "B2": "是", "B3": "", "B4": "", "B5": "否", "B6": ""}  # fmt: skip
    assert got.loc["B1", "gas_hazard"] == "否" and got.loc["B2", "gas_hazard"] == ""


def test_next_inspection_due() -> None:
    due = next_due(EVENTS, load_inspection_rules(), AS_OF).set_index("building_id")
    expected = {
        # multi-owner housing over 25: every 10 years from the 2023 appraisal
        "B1": ("multi-owner-old", dt.date(2033, 6, 1), False, 0),
        # housing over 30, never inspected: due since it turned 30 (1 Jan 2010)
        "B2": ("housing-30", dt.date(2010, 1, 1), True, (AS_OF - dt.date(2010, 1, 1)).days),
        # business self-built under 25: every 5 years from 2020-09-15
        "B3": ("business-self-built", dt.date(2025, 9, 15), True, 442),
        # grade D: every 3 months from the appraisal
        "B4": ("grade-d", dt.date(2026, 9, 1), True, 91),
        # housing of 2015: first due at 30 years
        "B5": ("housing-30 (first)", dt.date(2045, 1, 1), False, 0),
        "B6": ("unknown: year_built", None, False, 0),
    }
    for bid, (rule, when, overdue, days) in expected.items():
        row = due.loc[bid]
        assert (row["rule"], row["next_due"], row["overdue"], row["days_overdue"]) == (
            rule, when, overdue, days), bid  # fmt: skip


def test_dangerous_and_overdue_buildings_are_listed(tmp_path: Path) -> None:
    from cityos.cli import main
    from tests.conftest import TOY_CRS, ToyOsm, import_expecting

    t = ToyOsm()
    t.street_with_blocks(name="大街")
    import_expecting(tmp_path / "b", osm=t.write(tmp_path / "toy.osm"), measure_crs=TOY_CRS)
    ids = cityos.read_bundle(tmp_path / "b").buildings.set_index("name")["building_id"]
    events = tmp_path / "safety.csv"
    # B1 appraised D in 2020 (quarterly: long overdue); B2 appraised A in 2025, built 2015
    # (first due at 30 years, 2045)
    events.write_text("building_id,use,year_built,inspection_kind,inspection_date,appraisal_grade\n"
                      f"{ids['B1']},住宅,1970,安全鉴定,2020-01-01,D\n"
                      f"{ids['B2']},住宅,2015,安全鉴定,2025-01-01,A\n", encoding="utf-8")  # fmt: skip
    out = tmp_path / "check"
    assert main(["checkup", str(tmp_path / "b"), "--system", "housing-safety", "--register",
                 f"housing_safety={events}", "--out", str(out), "-q"]) == 0  # fmt: skip
    ind = pd.read_parquet(out / "indicators.parquet")
    city = ind[ind["level"] == "city"].set_index("indicator_id")
    for name in ("housing_dangerous_cd", "housing_inspection_overdue"):
        assert (city.loc[name, "value"], city.loc[name, "status"]) == (1.0, "fail"), name
    problems = pd.read_csv(out / "problems.csv", encoding="utf-8-sig")
    at_city = problems[problems["level"] == "city"].set_index("indicator_id")
    assert at_city.loc["housing_dangerous_cd", "building_ids"] == ids["B1"]
    assert at_city.loc["housing_inspection_overdue", "building_ids"] == ids["B1"]
