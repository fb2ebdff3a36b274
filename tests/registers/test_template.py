"""From survey form to health check on the Helsinki demo: `cityos template` writes a workbook
per register the mohurd-2024 system reads, pre-filled with the bundle's buildings and units;
filled programmatically with a seeded mix of every coded value, it passes `cityos register
check`, goes into the bundle with `cityos register add` (the version it replaces kept), and
the health check computes every indicator those registers feed, equal to what the
filled cells say (worked out here from the cells, not by the code under test); a workbook with
planted errors gets exactly those errors reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import cityos
from cityos.cli import main
from cityos.healthcheck.catalogue import load_system
from cityos.registers import load_schema
from cityos.registers.template import DATA_SHEET, FIRST_ROW, GUIDE_SHEET
from tests.conftest import import_expecting

REGISTERS = ["housing", "community", "subdistrict", "city"]


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hel")
    import_expecting(root / "b", osm=cityos.demo_osm_path())
    return root / "b"


@pytest.fixture(scope="module")
def forms(helsinki: Path) -> Path:
    out = helsinki.parent / "forms"
    assert main(["template", str(helsinki), "--out", str(out), "-q"]) == 0
    return out


def fill(src: Path, dst: Path, seed: int) -> dict[str, dict[str, list[str]]]:
    """Fill every schema cell of a template (a complete register: flags 是 or 否, numbers in
    range); returns the cells written, per column then per key."""
    book = openpyxl.load_workbook(src)
    ws = book[DATA_SHEET]
    names = [c.value for c in ws[2]]
    schema = load_schema(src.stem)
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, list[str]]] = {}
    for r in range(FIRST_ROW, ws.max_row + 1):
        key = ws.cell(r, 1).value
        if key is None:
            continue
        for j, name in enumerate(names, 1):
            if name == schema.key or str(name).startswith("ref_") or name == "item":
                continue
            c = schema.column(str(name))
            if c.type == "flag":
                value = str(rng.choice(["是", "否"]))
            else:
                high = c.max if c.max is not None else 500.0
                value = f"{rng.integers(0, int(high) * 10) / 10:g}"
            ws.cell(r, j).value = value
            written.setdefault(str(name), {}).setdefault(str(key), []).append(value)
    book.save(dst)
    return written


def test_template_lists_the_buildings_and_units_and_explains_every_column(forms: Path) -> None:
    manifest = json.loads((forms / "forms.json").read_text("utf-8"))
    assert [r["register"] for r in manifest["registers"]] == [
        "housing", "housing_safety", "community", "subdistrict", "city"]  # fmt: skip
    book = openpyxl.load_workbook(forms / "housing.xlsx")
    ws = book[DATA_SHEET]
    assert ws.cell(1, 1).value == "建筑编号" and ws.cell(2, 1).value == "building_id"
    headers = [c.value for c in ws[1]]
    assert "存在结构安全隐患" in headers and "〔参考〕层数" in headers
    # a drop-down of 是/否 on every flag column
    lists = [v for v in ws.data_validations.dataValidation if v.type == "list"]
    assert {v.formula1 for v in lists} == {'"是,否"'} and len(lists) == 10
    guide = pd.read_excel(forms / "housing.xlsx", sheet_name=GUIDE_SHEET, header=5)
    row = guide.set_index("列名 column").loc["structural_hazard"]
    assert "mohurd-2024 1 存在结构安全隐患的住宅数量" in row["用于指标 indicators"]
    twin = pd.read_csv(forms / "housing.csv", encoding="utf-8-sig", dtype=str)
    assert twin.columns[0] == "建筑编号" and len(twin) == ws.max_row - 2


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy city: one street, ten apartment blocks, two communities (the rest generated)."""
    from tests.conftest import toy_street_city

    return toy_street_city(tmp_path_factory.mktemp("toy"))


@pytest.mark.parametrize("city", ["helsinki", "toy"])
def test_filled_registers_feed_every_indicator(
    city: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(city)
    forms = tmp_path / "forms"
    assert main(["template", str(source), "--out", str(forms), "-q"]) == 0
    filled = {name: fill(forms / f"{name}.xlsx", tmp_path / f"{name}.xlsx", seed)
              for seed, name in enumerate(REGISTERS)}  # fmt: skip
    bundle = tmp_path / "bundle"
    shutil.copytree(source, bundle)
    for name in REGISTERS:
        path = f"{name}={tmp_path / name}.xlsx"
        assert main(["register", "check", str(bundle), path, "-q"]) == 0
        assert main(["register", "add", str(bundle), path, "-q"]) == 0
    # a second city register replaces the first, which is kept with its date
    assert main(["register", "add", str(bundle), f"city={tmp_path / 'city.xlsx'}", "-q"]) == 0
    b = cityos.read_bundle(bundle)
    assert sorted(b.registers) == sorted(REGISTERS)
    (old,) = b.manifest["register_history"]
    assert old["name"] == "city" and (bundle / old["kept_as"]).is_file()
    out = tmp_path / "check"
    assert main(["checkup", str(bundle), "--out", str(out), "-q"]) == 0
    ind = pd.read_parquet(out / "indicators.parquet")
    city = ind[(ind["level"] == "city") & (ind["system"] == "mohurd-2024")].set_index(
        "indicator_id"
    )
    sums = {i.id for i in load_system("mohurd-2024").indicators if i.method == "register_sum"}
    for name in REGISTERS:
        schema = load_schema(name)
        for column, feeds in schema.feeds.items():
            for f in feeds:
                if f.system != "mohurd-2024":
                    continue
                cells = [v for values in filled[name][column].values() for v in values]
                if schema.column(column).type == "flag":
                    expected = float(sum(v == "是" for v in cells))
                elif f.id in sums:  # counts and lengths that add up
                    expected = float(np.sum([float(v) for v in cells]))
                else:
                    expected = float(np.mean([float(v) for v in cells]))
                got = city.loc[f.id]
                assert got["status"] != "no_data", (f.id, got["note"])
                assert got["value"] == pytest.approx(expected), f.id


def test_planted_errors_are_reported_exactly(helsinki: Path, forms: Path, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(forms / "community.xlsx")
    ws = book[DATA_SHEET]
    names = [c.value for c in ws[2]]
    col = {n: j for j, n in enumerate(names, 1)}
    ws.cell(3, col["elderly_care_substandard"]).value = "maybe"
    ws.cell(4, col["unit_id"]).value = "no-such-unit"
    ws.cell(5, col["primary_school_place_shortfall"]).value = "-3"
    ws.cell(6, col["primary_school_place_shortfall"]).value = "many"
    ws.cell(7, col["unit_id"]).value = None
    ws.cell(7, col["waste_sorting_missing"]).value = "是"
    ws.cell(8, col["waste_sorting_missing"]).value = "有"  # accepted: read as 是
    bad = tmp_path / "community.xlsx"
    book.save(bad)
    report = tmp_path / "problems.csv"
    assert (
        main(
            ["register", "check", str(helsinki), f"community={bad}", "--report", str(report), "-q"]
        )
        == 2
    )
    got = pd.read_csv(report, encoding="utf-8-sig", dtype=str)
    assert [(int(r["行 row"]), r["列 column"], r["问题 problem"]) for _, r in got.iterrows()] == [
        (3, "未达标配建养老服务设施", "not 是 or 否"),
        (4, "单元编号", "no unit_id 'no-such-unit' in the bundle"),
        (5, "小学学位缺口数（个）", "out of range 0 – "),
        (6, "小学学位缺口数（个）", "not a number"),
        (7, "单元编号", "a required cell is blank"),
    ]


def test_housing_safety_events_give_the_ten_housing_indicators(
    helsinki: Path, forms: Path, tmp_path: Path
) -> None:
    """One periodic inspection per building recorded in the housing-safety workbook: the health
    check reads the ten 住房 flags from it (no `housing` register given)."""
    book = openpyxl.load_workbook(forms / "housing_safety.xlsx")
    ws = book[DATA_SHEET]
    col = {n: j for j, n in enumerate([c.value for c in ws[2]], 1)}
    rng = np.random.default_rng(7)
    flags = ["gas_hazard", "stairwell_hazard", "damaged_pipes", "not_self_contained",
             "ageing_retrofit_needed", "tap_water_substandard", "energy_retrofit_needed",
             "digital_retrofit_needed"]  # fmt: skip
    expected = dict.fromkeys(["structural_hazard", "envelope_hazard", *flags], 0)
    buildings = 0
    for r in range(FIRST_ROW, ws.max_row + 1):
        if ws.cell(r, 1).value is None:
            continue
        buildings += 1
        ws.cell(r, col["inspection_kind"]).value = "定期体检"
        ws.cell(r, col["inspection_date"]).value = "2026-10-0" + str(1 + r % 9)
        parts = [str(rng.choice(["无异常", "轻微", "隐患"], p=[0.6, 0.3, 0.1])) for _ in range(3)]
        for name, value in zip(["foundation", "superstructure", "envelope"], parts, strict=True):
            ws.cell(r, col[name]).value = value
        expected["structural_hazard"] += "隐患" in parts[:2]
        expected["envelope_hazard"] += parts[2] == "隐患"
        for name in flags:
            value = str(rng.choice(["是", "否"]))
            ws.cell(r, col[name]).value = value
            expected[name] += value == "是"
    filled = tmp_path / "housing_safety.xlsx"
    book.save(filled)
    bundle = tmp_path / "bundle"
    shutil.copytree(helsinki, bundle)
    assert main(["register", "add", str(bundle), f"housing_safety={filled}", "-q"]) == 0
    out = tmp_path / "check"
    assert main(["checkup", str(bundle), "--out", str(out), "--system", "mohurd-2024", "-q"]) == 0
    ind = pd.read_parquet(out / "indicators.parquet")
    city = ind[ind["level"] == "city"].set_index("indicator_id")
    for name, count in expected.items():
        got = city.loc[f"housing_{name}"]
        assert (got["status"] != "no_data", got["value"]) == (True, float(count)), name
    due = tmp_path / "due.csv"
    assert (
        main(["register", "due", str(bundle), "--as-of", "2026-12-01", "--out", str(due), "-q"])
        == 0
    )
    table = pd.read_csv(due, encoding="utf-8-sig")
    # neither use nor year built recorded: no rule of the frequency table applies yet
    assert len(table) == buildings and set(table["rule"]) == {"none"}


def test_one_set_of_forms_per_community(helsinki: Path, tmp_path: Path) -> None:
    whole = tmp_path / "all"
    assert main(["template", str(helsinki), "--out", str(whole), "--register", "housing", "--register",
                 "community", "-q"]) == 0  # fmt: skip
    housing = pd.read_csv(whole / "housing.csv", encoding="utf-8-sig", dtype=str)
    busiest = housing["〔参考〕所在社区单元"].value_counts().index[0]
    parts = tmp_path / "parts"
    assert main(["template", str(helsinki), "--out", str(parts), "--register", "housing", "--register",
                 "community", "--units", f"community={busiest}", "-q"]) == 0  # fmt: skip
    folder = parts / ("community_" + busiest.replace(":", "_"))
    mine = pd.read_csv(folder / "housing.csv", encoding="utf-8-sig", dtype=str)
    expected = sorted(housing.loc[housing["〔参考〕所在社区单元"] == busiest, "建筑编号"])
    assert sorted(mine["建筑编号"]) == expected and 0 < len(expected) < len(housing)
    unit = pd.read_csv(folder / "community.csv", encoding="utf-8-sig", dtype=str)
    assert unit["单元编号"].tolist() == [busiest]
    assert (
        main(
            [
                "template",
                str(helsinki),
                "--out",
                str(tmp_path / "x"),
                "--units",
                "community=nope",
                "-q",
            ]
        )
        == 2
    )


def test_a_citys_own_sheet_with_a_merged_title_and_chinese_headers(
    helsinki: Path, forms: Path, tmp_path: Path
) -> None:
    """Not our template: a title merged across the top, Chinese headers with units in brackets of
    either width, a column we do not know (ignored, said), 有/无 flags."""
    units = pd.read_csv(forms / "community.csv", encoding="utf-8-sig", dtype=str)["单元编号"]
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["2026年社区体检台账（某区）"])
    ws.merge_cells("A1:D1")
    ws.append(["单元编号", "小学学位缺口数(个)", "未实施物业管理", "填表人"])
    ws.append([units[0], 12, "有", "张三"])
    ws.append([units[1], "0", "无", "李四"])
    own = tmp_path / "own.xlsx"
    book.save(own)
    from cityos.registers.check import check_register, key_values, read_filled

    b = cityos.read_bundle(helsinki)
    schema = load_schema("community")
    checked = check_register(read_filled(own), schema, key_values(schema, b), str(own))
    assert checked.problems == [] and checked.ignored == ["填表人"]
    assert checked.table[["unit_id", "primary_school_place_shortfall", "property_management_missing"]].values.tolist() == [
        [units[0], "12", "是"], [units[1], "0", "否"]]  # fmt: skip
