"""The HTML report in a real headless Chromium (Debian's, driven by Playwright): it loads with no
console error and no request leaving the file, draws the map, follows the indicator selector,
and the map is not blank. Plus the CLI's formats and bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser

import cityos
from cityos.cli import main
from cityos.healthcheck.results import write_results
from cityos.report import write_html
from tests.conftest import import_expecting


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rep")
    bundle = import_expecting(root / "b", osm=cityos.demo_osm_path())
    return write_results(cityos.checkup(bundle), root / "results")


def test_file_is_self_contained(results: Path, tmp_path: Path) -> None:
    doc = write_html(results, tmp_path / "r.html").read_text("utf-8")
    assert '<html lang="en">' in doc  # Helsinki's units have no Chinese names
    assert "城市体检报告" in write_html(results, tmp_path / "zh.html", lang="zh").read_text("utf-8")
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", doc)
    assert "<script src" not in doc and "<link" not in doc
    assert "OpenStreetMap contributors" in doc


def test_page_in_chromium(results: Path, tmp_path: Path, browser: Browser) -> None:
    old = tmp_path / "old"
    shutil.copytree(results, old)
    report = write_html(results, tmp_path / "report.html", lang="en", compare=old)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "data:", "about:")) else outside.append(r.url),
    )
    page.goto(report.as_uri())
    page.wait_for_selector("#units path")
    assert errors == [] and outside == []
    assert page.locator("#units path").count() > 1
    assert page.locator("#streets path").get_attribute("d").count("M") > 100  # the streets basemap

    def fills() -> list[str]:
        return page.eval_on_selector_all("#units path", "ps => ps.map(p => p.getAttribute('fill'))")

    page.select_option("#indicator", "pop_supermarket_500m")
    before = fills()
    assert len(set(before)) > 1  # a choropleth, not one colour
    assert "supermarket" in page.inner_text("#info")
    page.select_option("#indicator", "pop_primary_school_500m")
    assert fills() != before  # choosing another indicator redraws the map
    assert "primary_school" in page.inner_text("#info")
    # hover shows the unit, its value, target, status and last year's value
    page.hover("#units path >> nth=0")
    tip = page.inner_text("#tip")
    assert "Value" in tip and "Status" in tip and "Year-over-year" in tip
    # year-over-year view: the same results as last year → every unit with data unchanged
    page.check("#showchange")
    changed = set(fills())
    assert "#bbb" in changed and changed <= {"#bbb", "#ddd"}
    page.uncheck("#showchange")
    assert "unchanged" in page.inner_text("#info")  # the change summary of the indicator
    assert page.locator("#worst tr").count() > 1  # the units failing most indicators
    assert "Sources" in page.inner_text("#methods") and "osm" in page.inner_text("#methods")
    # the map area is drawn, not blank: many distinct colours in its screenshot
    shot = page.locator("#map").screenshot()
    assert len(shot) > 20_000
    assert page.locator("#problems button").count() > 0
    page.close()


def test_priorities_map_in_chromium(results: Path, tmp_path: Path, browser: Browser) -> None:
    folder = tmp_path / "res"
    shutil.copytree(results, folder)
    assert main(["renew", str(folder)]) == 0
    report = write_html(folder, tmp_path / "p.html", lang="en")
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_selector("#units path")
    # the priority score is the community level's first map layer, coloured by score
    assert page.input_value("#indicator") == "renewal_priority"
    fills = page.eval_on_selector_all("#units path", "ps => ps.map(p => p.getAttribute('fill'))")
    assert len(set(fills)) > 1  # Helsinki: few units fail once missing data no longer does
    assert "Renewal priority score" in page.inner_text("#info")
    # the table of top units: rank 1 first, with what drives its score
    rows = page.locator("#priorities table.prio >> nth=0").locator("tr")
    assert rows.count() >= 2  # the header and at least the first unit
    first = rows.nth(1).inner_text()
    assert first.startswith("1") and "residents" in first
    # locate: switches to the priority layer at that level and zooms; the hover explains
    page.select_option("#indicator", "pop_supermarket_500m")
    page.locator("#priorities button >> nth=0").click()
    assert page.input_value("#indicator") == "renewal_priority"
    page.hover('#units path[fill="hsl(212,65%,32%)"] >> nth=0')  # the top unit, darkest
    assert "Rank: 1" in page.inner_text("#tip")
    assert errors == []
    page.close()


def test_report_without_priorities_hides_the_section(results: Path, tmp_path: Path) -> None:
    doc = write_html(results, tmp_path / "r.html").read_text("utf-8")
    assert '"priorities": null' in doc


def test_cli_report_formats_and_bad_input(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(results), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["report", str(results), "--out", str(tmp_path / "r.xlsx")]) == 0
    assert (tmp_path / "r.xlsx").stat().st_size > 5000
    assert main(["report", str(results), "--out", str(tmp_path / "r.html")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 2
    assert "not a health-check results folder" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_cli_language_follows_the_data(results: Path, tmp_path: Path) -> None:
    assert main(["report", str(results), "--out", str(tmp_path / "r.html")]) == 0
    assert '<html lang="en">' in (tmp_path / "r.html").read_text("utf-8")
    assert main(["report", str(results), "--out", str(tmp_path / "z.html"), "--lang", "zh"]) == 0
    assert '<html lang="zh">' in (tmp_path / "z.html").read_text("utf-8")


@pytest.mark.parametrize(
    ("lang", "present", "absent"),
    [
        (
            "zh",
            ["达标", "不达标", "无数据", "维度", "原因", "社区", "三种状态"],
            ["no_target", "dimension", "cause"],
        ),
        (
            "en",
            ["pass", "no data", "Dimension", "Cause", "Facilities", "Three states"],
            ["设施完善", "安全耐久", "无数据"],
        ),
    ],
)
def test_report_speaks_one_language(
    results: Path,
    tmp_path: Path,
    browser: Browser,
    lang: str,
    present: list[str],
    absent: list[str],
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(write_html(results, tmp_path / f"{lang}.html", lang=lang).as_uri())
    page.wait_for_selector("#units path")
    text = " ".join(page.inner_text(s) for s in ("#score", "#problems", "#methods", "#level"))
    assert [w for w in present if w not in text] == []
    assert [w for w in absent if w in text] == []
    # values for people: a percent with one decimal, never 57.14285714285714
    shown = page.inner_text("#legend") + page.eval_on_selector("#chart", "e => e.textContent")
    assert not re.search(r"\d\.\d{5,}", shown)
    page.close()
