"""The tool contract, tried as a hostile but realistic user would (issue 11): every case is one
command line on a workspace holding a real Helsinki bundle (``hel``), its health-check results
(``res``) and whatever the case prepares. A refusal is exit 2 with one ``cityos: error:`` line
and no traceback, and leaves every file that was there byte for byte as it was, with nothing
new (no output, no temporary file); a warning case succeeds with its ``cityos: warning:`` line.

The same table, run against an older cityos by ``benchmarks/contract_cases.py``, gives the
before/after figures of the issue's closing note.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import cityos
from cityos.cli import main

Prep = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """``args`` with ``{w}`` for the workspace; ``code`` expected; ``message`` in the one line."""

    id: str
    args: tuple[str, ...]
    message: str
    code: int = 2
    prep: Prep | None = None
    stream: str = "error"  # "error": one error line; "warning": a warning line, success


def _write(rel: str, text: str) -> Prep:
    def prep(w: Path) -> None:
        (w / rel).parent.mkdir(parents=True, exist_ok=True)
        (w / rel).write_text(text, "utf-8")

    return prep


def _both(*preps: Prep) -> Prep:
    def prep(w: Path) -> None:
        for p in preps:
            p(w)

    return prep


def _osm_in_user_folder(w: Path) -> None:
    (w / "mydata").mkdir()
    shutil.copy(cityos.demo_osm_path("helsinki"), w / "mydata" / "city.osm.pbf")
    (w / "mydata" / "notes.txt").write_text("the user's own notes\n")


def _cut(rel: str, keep: float = 0.5) -> Prep:
    def prep(w: Path) -> None:
        data = (w / rel).read_bytes()
        (w / rel).write_bytes(data[: int(len(data) * keep)])

    return prep


def _manifest(**change: object) -> Prep:
    def prep(w: Path) -> None:
        path = w / "hel" / "manifest.json"
        m = json.loads(path.read_text("utf-8"))
        for key, value in change.items():
            if value is _DROP:
                m.pop(key, None)
            else:
                m[key] = value
        path.write_text(json.dumps(m), "utf-8")

    return prep


_DROP = object()

# Helsinki: unit polygons in the walk network's extent (EPSG:3067 is the Finnish TM35FIN grid)
HEL_BOX = (24.936, 60.165, 24.952, 60.178)


def _units(rel: str, boxes: list[tuple[float, float, float, float]], **cols: list[object]) -> Prep:
    def prep(w: Path) -> None:
        frame = gpd.GeoDataFrame(
            {"name": [f"U{i}" for i in range(len(boxes))], **cols},
            geometry=[shapely.box(*b) for b in boxes],
            crs="EPSG:4326",
        )
        frame.to_file(w / rel)

    return prep


def _bow_tie(w: Path) -> None:
    x0, y0, x1, y1 = HEL_BOX
    tie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    gpd.GeoDataFrame(
        {"name": ["领结", "好"], "unit_id": ["A", "B"]},
        geometry=[tie, shapely.box(*HEL_BOX)],
        crs="EPSG:4326",
    ).to_file(w / "tie.geojson")


def _degrees_as_metres(w: Path) -> None:
    gpd.GeoDataFrame({"name": ["U"]}, geometry=[shapely.box(*HEL_BOX)], crs="EPSG:3067").to_file(
        w / "wrongcrs.gpkg"
    )


def _buildings(w: Path) -> None:
    x0, y0, _, _ = HEL_BOX
    d = 0.0002
    gpd.GeoDataFrame(
        {"building_id": ["b1", "b2", "b3"], "levels": ["-3", "abc", "5"], "use": ["住宅"] * 3},
        geometry=[shapely.box(x0 + i * 2 * d, y0, x0 + i * 2 * d + d, y0 + d) for i in range(3)],
        crs="EPSG:4326",
    ).to_file(w / "buildings.gpkg")


def _system(**fields: object) -> Prep:
    base: dict[str, object] = {
        "id": "x_market", "name_zh": "菜市场覆盖率", "name_en": "Market coverage",
        "level": "community", "dimension": "功能完善", "unit": "%", "direction": "higher",
        "confirmed": False, "target": 90, "target_op": ">=", "target_source": "test",
        "method": "coverage",
    }  # fmt: skip
    base.update(fields)
    cats = base.pop("categories", ["market"])

    def value(v: object) -> str:
        return json.dumps(v, ensure_ascii=False)

    lines = ['[system]\nid = "mine"\n\n[[indicator]]']
    lines += [
        f"{k} = {value(v).lower() if isinstance(v, bool) else value(v)}" for k, v in base.items()
    ]
    lines.append(
        f'params = {{ categories = {value(cats)}, radius_m = 500, measure = "population" }}'
    )
    return _write("mine.toml", "\n".join(lines) + "\n")


def _other_city(w: Path) -> None:
    shutil.copytree(w / "res", w / "res2")
    table = pd.read_parquet(w / "res2" / "indicators.parquet")
    table["unit_id"] = "elsewhere-" + table["unit_id"].astype(str)
    table.to_parquet(w / "res2" / "indicators.parquet", index=False)


def _dup_facilities(w: Path) -> None:
    x0, y0, _, _ = HEL_BOX
    pd.DataFrame(
        {"id": ["7", "7", "8"], "name": ["A", "B", "C"], "category": ["market"] * 3,
         "lon": [x0 + 0.001] * 3, "lat": [y0 + 0.001] * 3}
    ).to_csv(w / "pois.csv", index=False)  # fmt: skip


def _invalid_unit_in_bundle(w: Path) -> None:
    path = w / "hel" / "units.parquet"
    units = gpd.read_parquet(path)
    x0, y0, x1, y1 = HEL_BOX
    tie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    one = gpd.GeoDataFrame(
        {"unit_id": ["T"], "name": ["领结"], "level": ["community"], "admin_level": [float("nan")],
         "source": ["hand-edited"]},
        geometry=[tie], crs="EPSG:4326",
    )  # fmt: skip
    pd.concat([units, one], ignore_index=True).pipe(gpd.GeoDataFrame).to_parquet(path)


HEL = ("import", "--demo", "helsinki")
SITE = ("site", "{w}/hel", "--category", "supermarket", "--add", "1", "--candidates", "stock")

CASES = [
    # --- output safety: --force replaces only cityos' own output of the same kind
    Case("import-out-holds-input", ("import", "{w}/mydata/city.osm.pbf", "--out", "{w}/mydata", "--force"),
         "contains the input", prep=_osm_in_user_folder),
    Case("checkup-out-is-bundle", ("checkup", "{w}/hel", "--out", "{w}/hel", "--force"), "contains the input"),
    Case("report-over-results-file", ("report", "{w}/res", "--out", "{w}/res/summary.json", "--force"),
         "a report is .html or .xlsx"),
    Case("access-over-bundle-layer", ("access", "{w}/hel", "--out", "{w}/hel/buildings.parquet", "--force"),
         "is an input of this run"),
    Case("import-out-is-cwd", (*HEL, "--out", ".", "--force"), "current folder"),
    Case("checkup-out-user-folder", ("checkup", "{w}/hel", "--out", "{w}/mine", "--force"),
         "a folder of other files", prep=_write("mine/thesis.docx", "years of work")),
    Case("checkup-out-other-bundle", ("checkup", "{w}/hel", "--out", "{w}/res-bundle", "--force"),
         "is a city bundle, not a health-check results folder",
         prep=lambda w: shutil.copytree(w / "hel", w / "res-bundle")),
    Case("report-over-user-html", ("report", "{w}/res", "--out", "{w}/page.html", "--force"),
         "not a .html file cityos writes", prep=_write("page.html", "my notes, not a web page")),
    Case("report-pdf", ("report", "{w}/res", "--out", "{w}/r.pdf"), "a report is .html or .xlsx"),
    Case("report-format-mismatch", ("report", "{w}/res", "--format", "xlsx", "--out", "{w}/r.html"),
         "--format xlsx writes a .xlsx file"),
    Case("access-parent-is-file", ("access", "{w}/hel", "--out", "{w}/afile/x/acc.parquet"),
         "is a file", prep=_write("afile", "x")),
    Case("access-txt", ("access", "{w}/hel", "--out", "{w}/acc.txt"), "name it with .parquet or .csv"),
    Case("renew-out-user-folder", ("renew", "{w}/res", "--out", "{w}/mine", "--force"),
         "a folder of other files", prep=_write("mine/data.csv", "a,b\n")),
    Case("site-out-is-bundle", (*SITE, "--radius", "300", "--out", "{w}/hel", "--force"), "contains the input"),
    Case("checkup-exists-no-force", ("checkup", "{w}/hel", "--out", "{w}/res"),
         "health-check results folder exists; pass --force"),
    Case("compare-out-is-input", ("compare", "{w}/res", "{w}/res", "--out", "{w}/res/problems.csv", "--force"),
         "is an input of this run"),
    # --- damaged inputs: one line, never a traceback
    Case("report-summary-cut", ("report", "{w}/res", "--out", "{w}/r.html"), "summary.json: damaged",
         prep=_cut("res/summary.json")),
    Case("renew-summary-cut", ("renew", "{w}/res"), "summary.json: damaged", prep=_cut("res/summary.json")),
    Case("compare-parquet-cut", ("compare", "{w}/res", "{w}/res"), "indicators.parquet: damaged",
         prep=_cut("res/indicators.parquet")),
    Case("report-compare-missing", ("report", "{w}/res", "--compare", "{w}/nope", "--out", "{w}/r.html"),
         "nope: not a health-check results folder"),
    Case("info-manifest-no-crs", ("info", "{w}/hel"), "damaged manifest: 'crs' is null", prep=_manifest(crs=_DROP)),
    Case("info-manifest-crs-999999", ("info", "{w}/hel"), "'crs' 'EPSG:999999' is not a known CRS",
         prep=_manifest(crs="EPSG:999999")),
    Case("checkup-manifest-crs-null", ("checkup", "{w}/hel", "--out", "{w}/r2"), "damaged manifest: 'crs' is null",
         prep=_manifest(crs=None)),
    Case("system-target-percent", ("checkup", "{w}/hel", "--out", "{w}/r2", "--system", "{w}/mine.toml"),
         "target '90%' is not a number", prep=_system(target="90%")),
    Case("system-target-op", ("checkup", "{w}/hel", "--out", "{w}/r2", "--system", "{w}/mine.toml"),
         "target_op '=~' is not one of", prep=_system(target_op="=~")),
    Case("access-max-snap-0", ("access", "{w}/hel", "--out", "{w}/a.csv", "--max-snap", "0"),
         "--max-snap': 0.0 is not in the range x>0"),
    Case("import-xls", (*HEL, "--out", "{w}/b", "--facilities", "{w}/pois.xls"), "save it as .xlsx or CSV",
         prep=_write("pois.xls", "\u00d0\u00cf binary")),
    # --- wrong input refused, suspicious input warned
    Case("measure-crs-feet", (*HEL, "--out", "{w}/b", "--measure-crs", "EPSG:2263"), "not metres"),
    Case("units-far-away", (*HEL, "--out", "{w}/b", "--units", "community={w}/bj.geojson"),
         "km from the OSM extract", code=0, stream="warning",
         prep=_units("bj.geojson", [(116.39, 39.90, 116.40, 39.91)])),
    Case("units-degrees-as-metres", (*HEL, "--out", "{w}/b", "--units", "community={w}/wrongcrs.gpkg"),
         "look like degrees", code=0, stream="warning", prep=_degrees_as_metres),
    Case("units-duplicate-ids", (*HEL, "--out", "{w}/b", "--units", "community={w}/dup.geojson"),
         "1 unit codes in 'unit_id' repeat ('A')",
         prep=_units("dup.geojson", [HEL_BOX, HEL_BOX], unit_id=["A", "A"])),
    Case("units-without-geometry", (*HEL, "--out", "{w}/b", "--units", "community={w}/holes.geojson"),
         "1 of 2 features have no geometry and were left out", code=0, stream="warning",
         prep=_write("holes.geojson", json.dumps({"type": "FeatureCollection", "features": [
             {"type": "Feature", "properties": {"name": "A"}, "geometry": None},
             {"type": "Feature", "properties": {"name": "B"}, "geometry": shapely.geometry.mapping(shapely.box(*HEL_BOX))},
         ]}))),
    Case("units-self-intersecting", (*HEL, "--out", "{w}/b", "--units", "community={w}/tie.geojson"),
         "1 of 2 unit polygons were invalid (self-intersecting) and were repaired", code=0,
         stream="warning", prep=_bow_tie),
    Case("checkup-invalid-unit-in-bundle", ("checkup", "{w}/hel", "--out", "{w}/r2", "-q"),
         "1 of 1 unit polygons were invalid", code=0, stream="warning", prep=_invalid_unit_in_bundle),
    Case("register-xls", (*HEL, "--out", "{w}/b", "--register", "safety={w}/safety.xls"),
         "save it as .xlsx or CSV", prep=_write("safety.xls", "\u00d0\u00cf binary")),
    Case("units-unknown-level", (*HEL, "--out", "{w}/b", "--units", "foo={w}/bj.geojson"),
         "unknown level 'foo'", prep=_units("bj.geojson", [HEL_BOX])),
    Case("buildings-bad-storeys", (*HEL, "--out", "{w}/b", "--buildings", "{w}/buildings.gpkg"),
         "2 buildings have storey counts that are not positive numbers", code=0, stream="warning",
         prep=_buildings),
    Case("facilities-duplicate-ids", (*HEL, "--out", "{w}/b", "--facilities", "{w}/pois.csv"),
         "1 rows repeat a facility id in 'id'", code=0, stream="warning", prep=_dup_facilities),
    Case("system-misspelled-category", ("checkup", "{w}/hel", "--out", "{w}/r2", "--system", "{w}/mine.toml"),
         "'markets' (did you mean 'market'?)", prep=_system(categories=["markets"])),
    Case("weights-misspelled-dimension", ("renew", "{w}/res", "--weights", "{w}/w.toml"),
         "'安全耐九' (did you mean '安全耐久'?)", prep=_write("w.toml", '[dimension]\n"安全耐九" = 3.0\n')),
    Case("site-radius-0", (*SITE, "--radius", "0", "--out", "{w}/s"), "--radius': 0.0 is not in the range x>0"),
    Case("checkup-cutoff-0", ("checkup", "{w}/hel", "--out", "{w}/r2", "--cutoff", "0"), "not in the range x>0"),
    Case("checkup-city-population-0", ("checkup", "{w}/hel", "--out", "{w}/r2", "--city-population", "0"),
         "not in the range x>0"),
    Case("site-time-limit-negative", (*SITE, "--radius", "300", "--time-limit", "-1", "--out", "{w}/s"),
         "not in the range x>0"),
    Case("renew-top-negative", ("renew", "{w}/res", "--top", "-3"), "not in the range x>=0"),
    Case("compare-other-city", ("compare", "{w}/res", "{w}/res2"), "share no unit id", prep=_other_city),
    Case("node-index-folder", (*HEL, "--out", "{w}/b", "--node-index", "sparse_file_array,{w}/no/dir/idx"),
         "--node-index sparse_file_array"),
    Case("batch-out-is-results", ("batch", "{w}/c.csv", "--out", "{w}/res", "--force", "--scheduler", "sequential"),
         "is a health-check results folder, not a batch folder",
         prep=_write("c.csv", "city_id,name,osm\nhel,Helsinki,demo:helsinki\n")),
    Case("batch-out-holds-input", ("batch", "{w}/c.csv", "--out", "{w}/mydata", "--scheduler", "sequential"),
         "contains the input", prep=_both(_osm_in_user_folder,
                                           _write("c.csv", "city_id,name,osm\nc,C,mydata/city.osm.pbf\n"))),
    Case("batch-list-problems", ("batch", "{w}/c.csv", "--out", "{w}/p", "--scheduler", "sequential"),
         "2 problems: row 2 (x): osm 'x.pbf': no such file", prep=_write("c.csv", "city_id,name,osm\nx,X,x.pbf\n,Y,demo:kouvola\n")),
    Case("batch-out-exists", ("batch", "{w}/c.csv", "--out", "{w}/p", "--scheduler", "sequential"),
         "batch folder exists; pass --resume", prep=_both(
             _write("c.csv", "city_id,name,osm\nhel,Helsinki,demo:helsinki\n"), _write("p/batch.json", "{}"))),
    Case("poi-table-no-coordinates", (*HEL, "--out", "{w}/b", "--facilities", "{w}/p.csv"),
         "name the columns lon and lat", prep=_write("p.csv", "name,address\n幼儿园,北京\n")),
]  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Helsinki bundle and its health-check results, made once."""
    root = tmp_path_factory.mktemp("contract")
    assert main(["import", "--demo", "helsinki", "--out", str(root / "hel"), "-q"]) == 0
    assert main(["checkup", str(root / "hel"), "--out", str(root / "res"), "-q"]) == 0
    return root


@pytest.fixture
def workspace(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(made / "hel", tmp_path / "hel")
    shutil.copytree(made / "res", tmp_path / "res")
    monkeypatch.chdir(tmp_path)
    return tmp_path


_TIMER = ("0:00:00", "0:00:01", "0:00:02", "0:00:03")


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if case.prep is not None:
        case.prep(workspace)
    before = snapshot(workspace)
    code = main([a.replace("{w}", str(workspace)) for a in case.args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    assert code == case.code, err
    if case.stream == "error":
        # progress lines (a spinner, a timer) may come first; the error is one line, the last
        lines = [x for x in err.strip().splitlines() if not x.endswith(_TIMER)]
        assert len(lines) == 1 and lines[0].startswith("cityos: error: "), err
        assert case.message in lines[0]
        assert snapshot(workspace) == before  # nothing changed, nothing new, no temporary
    else:
        warned = [x for x in err.splitlines() if x.startswith("cityos: warning: ")]
        assert any(case.message in x for x in warned), err
        after = snapshot(workspace)
        assert {k: v for k, v in after.items() if k in before} == before
        assert not [k for k in after if ".tmp-" in k]


def test_force_replaces_own_output_of_the_same_kind(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = str(workspace)
    assert main(["access", f"{w}/hel", "--out", f"{w}/nodir/x/acc.csv", "-q"]) == 0
    assert main(["report", f"{w}/res", "--out", f"{w}/r.html", "-q"]) == 0
    first = (workspace / "r.html").read_bytes()
    assert main(["report", f"{w}/res", "--out", f"{w}/r.html", "-q", "--force"]) == 0
    assert (workspace / "r.html").read_bytes().startswith(first[:15])
    assert main(["checkup", f"{w}/hel", "--out", f"{w}/res", "-q", "--force"]) == 0
    assert main(["renew", f"{w}/res", "-q"]) == 0
    assert main(["renew", f"{w}/res", "-q", "--force"]) == 0
    capsys.readouterr()
    assert (workspace / "nodir" / "x" / "acc.csv").is_file()
    assert not [p for p in workspace.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def test_unsorted_osm_is_sorted_on_the_fly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an export whose ways are out of id order, as JOSM saves and some Overpass queries return
    src = tmp_path / "unsorted.osm.pbf"
    subprocess.run(
        [sys.executable, str(Path(__file__).parent / "unsort_osm.py"),
         str(cityos.demo_osm_path("helsinki")), str(src)],
        check=True,
    )  # fmt: skip
    assert main(["import", str(src), "--out", str(tmp_path / "u"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "not sorted by type and id" in err and "sorted on the fly" in err
    sorted_bundle = cityos.read_bundle(tmp_path / "u")
    assert main(["import", "--demo", "helsinki", "--out", str(tmp_path / "s"), "-q"]) == 0
    capsys.readouterr()
    reference = cityos.read_bundle(tmp_path / "s")
    assert sorted_bundle.manifest["layers"] == reference.manifest["layers"]
    assert sorted_bundle.walk_edges["length_m"].sum() == pytest.approx(
        reference.walk_edges["length_m"].sum()
    )


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONWARNINGS": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "cityos", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "when", "code"),
    [(signal.SIGINT, "start", 130), (signal.SIGINT, "writing", 130),
     (signal.SIGTERM, "writing", 143), (signal.SIGTERM, "start", 143)],
    ids=["sigint-at-start", "sigint-while-writing", "sigterm-while-writing", "sigterm-at-start"],
)  # fmt: skip
def test_signals_leave_nothing_behind(tmp_path: Path, signum: int, when: str, code: int) -> None:
    """Ctrl-C or SIGTERM 0.2 s after start (Python still importing), or the moment the
    temporary bundle folder appears: the status says which signal, no traceback, nothing left."""
    (tmp_path / "keep.txt").write_text("mine")
    proc = _start(["import", "--demo", "helsinki", "--out", "hel", "-q"], tmp_path)
    if when == "start":
        time.sleep(0.2)
    else:
        deadline = time.monotonic() + 60
        while not [p for p in tmp_path.iterdir() if p.name.startswith(".hel.tmp-")]:
            assert proc.poll() is None and time.monotonic() < deadline, "never wrote the bundle"
            time.sleep(0.002)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == -signum and when == "start":  # before Python ran any cityos code
        assert not err
    else:
        assert proc.returncode == code, err
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith("cityos: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
