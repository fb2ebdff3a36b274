"""``cityos.batch`` on a small province: sequential and on a LocalCluster give the same
``all_indicators.parquet``; the broken extract fails alone; the toy cities' values are the ones
worked out by hand; ``resume`` runs nothing unchanged and exactly what changed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster
from playwright.sync_api import Browser

import cityos
from cityos.cities import BatchResult, city_from_mapping, read_cities
from cityos.errors import InputError, OutputExistsError
from tests.cities.conftest import TOY_COVERAGE, toy_city

OK = ["toy_w", "toy_c", "hel"]


@pytest.fixture(scope="module")
def sequential(province: Path) -> BatchResult:
    return cityos.batch(province, province.parent / "seq")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                      silence_logs=40, resources={"memory": 4e9}) as lc, Client(lc) as client:  # fmt: skip
        yield client


def test_each_city_ends_ok_or_failed_alone(sequential: BatchResult) -> None:
    status = {r["city_id"]: r["status"] for r in sequential.records}
    assert status == {"toy_w": "ok", "toy_c": "ok", "hel": "ok", "broken": "failed"}
    broken = sequential.records[-1]
    assert broken["step"] == "import"
    assert "broken.osm.pbf" in broken["error"] and "not a readable OSM file" in broken["error"]
    assert broken["attempts"] == 1  # a user's error is not retried
    out = sequential.out
    assert not (out / "broken").exists()
    assert not (out / ".work").exists()
    for cid in OK:
        for part in ("bundle/manifest.json", "results/indicators.parquet", "report.html",
                     "results/priorities/priorities.csv", "city.json"):  # fmt: skip
            assert (out / cid / part).is_file(), (cid, part)


def test_values_worked_out_by_hand(sequential: BatchResult) -> None:
    table = pd.read_parquet(sequential.out / "all_indicators.parquet")
    assert list(table.columns[:3]) == ["city_id", "city_name", "adcode"]
    assert list(table["city_id"].unique()) == OK  # the list's order; no row of the broken city
    cov = table[table["indicator_id"] == "pop_supermarket_500m"].set_index(["city_id", "unit_id"])
    for cid, expected in TOY_COVERAGE.items():
        for unit, value in expected.items():
            assert cov.at[(cid, unit), "value"] == pytest.approx(value, abs=0.01), (cid, unit)
    assert table.loc[table["city_id"] == "toy_w", "adcode"].unique().tolist() == ["110102"]
    assert table.loc[table["city_id"] == "hel", "adcode"].isna().all()
    # a row per city × unit × indicator, as many as each city's own results hold
    for cid in OK:
        own = pd.read_parquet(sequential.out / cid / "results" / "indicators.parquet")
        assert (table["city_id"] == cid).sum() == len(own)


def test_cities_table(sequential: BatchResult) -> None:
    t = pd.read_csv(sequential.out / "cities.csv", encoding="utf-8-sig", dtype={"adcode": str})
    assert t["city_id"].tolist() == [*OK, "broken"]
    assert t["status"].tolist() == ["ok", "ok", "ok", "failed"]
    assert t.loc[3, "failed_step"] == "import"
    indicators = pd.read_parquet(sequential.out / "all_indicators.parquet")
    for _, row in t.head(3).iterrows():
        n = indicators[indicators["city_id"] == row["city_id"]]["status"].value_counts()
        for s in ("pass", "fail", "no_data", "no_target"):
            assert row[f"n_{s}"] == n.get(s, 0)
        assert row["total_s"] >= row["checkup_s"] > 0
    assert t.loc[0, "buildings"] == 10
    assert t.loc[0, "pop_supermarket_500m"] == pytest.approx(50.0, abs=0.01)
    assert pd.isna(t.loc[3, "pop_supermarket_500m"])  # not measured: empty, never zero
    record = json.loads((sequential.out / "batch.json").read_text("utf-8"))
    assert [c["city_id"] for c in record["cities"]] == [*OK, "broken"]
    assert record["scheduler"].startswith("sequential")


def test_comparison_ranks_by_hand(sequential: BatchResult) -> None:
    ranking = pd.read_excel(sequential.out / "comparison.xlsx", sheet_name="排名 ranking")
    cov = ranking[ranking["indicator_id"] == "pop_supermarket_500m"]
    # higher is better: toy_c 100 % first, Helsinki (about 72 %) second, toy_w 50 % third
    assert cov["city_id"].tolist() == ["toy_c", "hel", "toy_w"]
    assert cov["rank"].tolist() == [1, 2, 3]
    page = (sequential.out / "comparison.html").read_text("utf-8")
    assert "坏城" in page and "not a readable OSM file" in page  # the failed city, with its error


def test_local_cluster_gives_the_same_indicators(
    province: Path, sequential: BatchResult, cluster: Client
) -> None:
    result = cityos.batch(province, province.parent / "dist", client=cluster)
    assert [r["status"] for r in result.records] == ["ok", "ok", "ok", "failed"]
    a = pd.read_parquet(sequential.out / "all_indicators.parquet")
    b = pd.read_parquet(result.out / "all_indicators.parquet")
    pd.testing.assert_frame_equal(a, b)
    workers = {r["worker"].rsplit(":", 1)[1] for r in result.records if r["status"] == "ok"}
    assert str(os.getpid()) not in workers  # the cities ran in the cluster's processes
    record = json.loads((result.out / "batch.json").read_text("utf-8"))
    assert record["scheduler"].startswith("tcp://127.0.0.1:")


def test_resume_runs_only_what_changed(tmp_path: Path, province: Path, cluster: Client) -> None:
    import shutil

    root = tmp_path / "p"
    shutil.copytree(province.parent, root, ignore=shutil.ignore_patterns("seq", "dist"))
    cities = [c for c in read_cities(root / "cities.csv") if c.city_id != "hel"]
    first = cityos.batch(cities, root / "out", client=cluster)
    stamps = {c: (root / "out" / c / "city.json").stat().st_mtime_ns for c in ("toy_w", "toy_c")}
    with pytest.raises(OutputExistsError, match="--resume"):
        cityos.batch(cities, root / "out", client=cluster)
    again = cityos.batch(cities, root / "out", client=cluster, resume=True)
    assert [r.get("resumed", False) for r in again.records] == [True, True, False]
    assert again.records[2]["status"] == "failed"  # a failed city is tried again
    assert {c: (root / "out" / c / "city.json").stat().st_mtime_ns for c in stamps} == stamps
    toy_city(root / "west.osm", 500.0)  # the west city's supermarket moves to the centre
    third = cityos.batch(cities, root / "out", client=cluster, resume=True)
    assert [r.get("resumed", False) for r in third.records] == [False, True, False]
    table = pd.read_parquet(root / "out" / "all_indicators.parquet")
    row = table[(table["city_id"] == "toy_w") & (table["level"] == "city")
                & (table["indicator_id"] == "pop_supermarket_500m")]  # fmt: skip
    assert row["value"].iloc[0] == pytest.approx(100.0, abs=0.01)
    assert first.records[0]["fingerprint"] != third.records[0]["fingerprint"]
    # a different option is a different run too
    changed = [replace(c, options={**c.options, "cutoff": "800"}) if c.city_id == "toy_c" else c
               for c in cities]  # fmt: skip
    fourth = cityos.batch(changed, root / "out", client=cluster, resume=True)
    assert [r.get("resumed", False) for r in fourth.records] == [True, False, False]


def test_skipped_steps_carry_the_last_outputs_over(tmp_path: Path, province: Path) -> None:
    toy = read_cities(province)[:1]
    cityos.batch(toy, tmp_path / "out", steps=["import", "checkup"])
    assert not (tmp_path / "out" / "toy_w" / "report.html").exists()
    before = (tmp_path / "out" / "toy_w" / "bundle" / "manifest.json").stat().st_ino
    result = cityos.batch(toy, tmp_path / "out", steps=["renew", "report"], force=True)
    assert result.records[0]["status"] == "ok"
    assert result.records[0]["durations_s"].keys() == {"renew", "report", "total"}
    folder = tmp_path / "out" / "toy_w"
    assert (folder / "report.html").is_file() and (folder / "results/priorities").is_dir()
    assert (folder / "bundle" / "manifest.json").stat().st_ino == before  # linked, not redone


def test_skipped_import_without_a_bundle_fails_that_city(tmp_path: Path, province: Path) -> None:
    toy = read_cities(province)[:1]
    result = cityos.batch(toy, tmp_path / "out", steps=["checkup"])
    assert result.records[0]["status"] == "failed"
    assert result.records[0]["step"] == "checkup"
    assert "import is skipped" in result.records[0]["error"]


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        ({"city_id": "a b", "name": "x", "osm": "demo:helsinki"}, "city_id 'a b'"),
        ({"city_id": "a", "name": "", "osm": "demo:helsinki"}, "name is empty"),
        ({"city_id": "a", "name": "x", "adcode": "1101", "osm": "demo:helsinki"}, "adcode '1101'"),
        ({"city_id": "a", "name": "x", "osm": "demo:paris"}, "the demo extracts are"),
        ({"city_id": "a", "name": "x", "osm": "none.pbf"}, "no such file"),
        ({"city_id": "a", "name": "x", "osm": "demo:helsinki", "options": "cutoff=-1"}, "positive"),
        ({"city_id": "a", "name": "x", "osm": "demo:helsinki", "options": "colour=red"}, "key=value"),
        ({"city_id": "a", "name": "x", "osm": "demo:helsinki", "options": "skip=paint"}, "the steps are"),
        ({"city_id": "a", "name": "x"}, "neither osm nor buildings"),
    ],
)  # fmt: skip
def test_a_bad_row_is_refused(tmp_path: Path, cells: dict[str, str], problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        city_from_mapping(cells, base=tmp_path)


def test_every_problem_of_the_list_at_once(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "city_id,name,osm,colour\na,A,demo:helsinki,\na,B,demo:kouvola,\n.x,,nothing.pbf,\n",
        "utf-8",
    )
    with pytest.raises(InputError) as err:
        read_cities(tmp_path / "c.csv")
    text = str(err.value)
    assert "\n" not in text
    for part in ("unknown column colour", "row 3: city_id 'a' repeats row 2", "row 4 (.x): city_id",
                 "row 4 (.x): name is empty", "osm 'nothing.pbf': no such file", "5 problems"):  # fmt: skip
        assert part in text, part


def test_comparison_page_in_chromium(sequential: BatchResult, browser: Browser) -> None:
    page = browser.new_page()
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith("file://") else None)
    page.goto((sequential.out / "comparison.html").as_uri())
    assert page.locator("#shapes path.city").count() == 3  # the three finished cities
    page.select_option("#indicator", "pop_supermarket_500m")
    names = page.locator("#rank tr td:nth-child(2)").all_inner_texts()
    ranks = page.locator("#rank tr td:nth-child(1)").all_inner_texts()
    assert names == ["中城", "Helsinki", "西城", "坏城"]
    assert ranks == ["1", "2", "3", "—"]  # the failed city is listed, not ranked
    assert page.locator("#cities tr.failed").count() == 1
    fills = set(
        page.locator("#shapes path.city").evaluate_all("ps => ps.map(p => p.getAttribute('fill'))")
    )
    assert len(fills) == 3  # 100 %, 72 % and 50 % in three shades
    assert errors == [] and outside == []
    page.close()
