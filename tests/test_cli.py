"""The command line: bad input ends in one line on stderr, exit status 2, no traceback and no
partial output; ``cityos info --json`` has a pinned shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cityos
from cityos.cli import main
from tests.conftest import import_expecting


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("cityos: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def files(tmp_path: Path, helsinki_pbf: Path) -> dict[str, Path]:
    data = helsinki_pbf.read_bytes()
    f = {
        "empty": tmp_path / "empty.osm.pbf",
        "truncated": tmp_path / "truncated.osm.pbf",
        "notpbf": tmp_path / "notes.osm.pbf",
        "nogeom": tmp_path / "nogeom.geojson",
        "nolonlat": tmp_path / "pois.csv",
        "outofrange": tmp_path / "swapped.csv",
        "gisempty": tmp_path / "empty.geojson",
        "txt": tmp_path / "city.txt",
    }
    f["empty"].write_bytes(b"")
    f["truncated"].write_bytes(data[: len(data) // 2])
    f["notpbf"].write_text("this is a text file, not OpenStreetMap data\n" * 10)
    f["nogeom"].write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "A", "level": "社区"}, "geometry": None}]}))  # fmt: skip
    f["nolonlat"].write_text("name,address\n幼儿园,北京\n", "utf-8")
    f["outofrange"].write_text("name,lon,lat\nA,39.9,116.4\nB,39.8,116.3\n", "utf-8")
    f["gisempty"].write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    f["txt"].write_text("hello")
    return f


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("missing", ["{tmp}/nope.osm.pbf"], "nope.osm.pbf: OSM file not found"),
        ("empty", ["{empty}"], "empty.osm.pbf: OSM file is empty"),
        ("truncated", ["{truncated}"], "truncated.osm.pbf: cannot read the OSM data"),
        ("notpbf", ["{notpbf}"], "notes.osm.pbf: not a readable OSM file"),
        ("txt", ["{txt}"], "city.txt: unknown OSM file type"),
        ("nogeom", ["--units", "{nogeom}"], "nogeom.geojson: no feature has a geometry"),
        ("gisempty", ["--units", "community={gisempty}"], "empty.geojson: the layer has no features"),
        ("nolonlat", ["--facilities", "{nolonlat}"], "pois.csv: no longitude/latitude columns"),
        ("outofrange", ["--facilities", "{outofrange}"], "swapped.csv: 2 rows have coordinates out of range (first at line 2"),
        ("crs", ["--facilities", "{outofrange}", "--crs", "EPSG:999999"], "unknown CRS 'EPSG:999999'"),
        ("mcrs", ["{truncated}", "--measure-crs", "EPSG:4326"], "is not projected"),
        ("nothing", [], "nothing to import"),
        ("index", ["{truncated}", "--node-index", "magic"], "unknown node index 'magic'"),
        ("date", ["--facilities", "{nolonlat}", "--as-of", "yesterday"], "is not a date"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_no_output(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: dict[str, Path],
    case: str,
    args: list[str],
    message: str,
) -> None:
    subst = {k: str(v) for k, v in files.items()} | {"tmp": str(tmp_path)}
    out = tmp_path / "bundle"
    code, _, err = run(
        capsys, "import", *(a.format(**subst) for a in args), "--out", str(out), "-q"
    )
    assert code == 2
    assert message in _error_line(err)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]


def test_existing_output_needs_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "hel"
    assert run(capsys, "import", "--demo", "helsinki", "--out", str(out), "-q")[0] == 0
    code, _, err = run(capsys, "import", "--demo", "helsinki", "--out", str(out), "-q")
    assert code == 2 and "city bundle exists; pass --force" in _error_line(err)
    assert run(capsys, "import", "--demo", "helsinki", "--out", str(out), "-q", "--force")[0] == 0


def test_quiet_prints_no_progress_but_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        capsys, "import", "--demo", "helsinki", "--out", str(tmp_path / "b"), "--quiet"
    )
    assert code == 0 and out == ""
    assert err.splitlines() and all(
        line.startswith("cityos: warning:") for line in err.splitlines()
    )


def test_progress_is_shown_without_quiet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "import", "--demo", "kouvola", "--out", str(tmp_path / "b"))
    assert code == 0
    assert "reading test.osm.pbf" in err and "wrote" in err


def test_info_json_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "hel"
    run(capsys, "import", "--demo", "helsinki", "--out", str(out), "-q")
    code, text, _ = run(capsys, "info", str(out), "--json")
    assert code == 0
    info = json.loads(text)
    assert {"layers", "facility_categories", "crs", "bbox", "as_of"} <= set(info)
    b = cityos.read_bundle(out)
    assert info["layers"] == {k: len(v) for k, v in b.layers.items()}
    assert info["facility_categories"] == b.facilities["category"].value_counts().to_dict()
    assert info["crs"] == "EPSG:32635"
    assert len(info["bbox"]) == 4 and info["as_of"] == b.as_of
    assert info["sources"][0]["kind"] == "osm"


def test_info_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "hel"
    run(capsys, "import", "--demo", "helsinki", "--out", str(out), "-q")
    code, text, _ = run(capsys, "info", str(out))
    assert code == 0
    for word in ("EPSG:32635", "walk_edges", "bus_stop", "OpenStreetMap contributors", "sha256"):
        assert word in text


def test_info_on_a_non_bundle(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "info", str(tmp_path))
    assert code == 2 and "not a city bundle" in _error_line(err)


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "import", "--register", "oops", "--out", "x")
    assert code == 2 and "NAME=PATH" in err


def test_console_script_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "cityos"
    res = subprocess.run([str(exe), "import", str(tmp_path / "none.osm.pbf"), "--out", str(tmp_path / "b")],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip().startswith("cityos: error:") and "Traceback" not in res.stderr


def test_node_index_on_disk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    index = tmp_path / "nodes.idx"
    out = tmp_path / "b"
    args = [
        "import",
        "--demo",
        "kouvola",
        "--out",
        str(out),
        "-q",
        "--node-index",
        f"sparse_file_array,{index}",
    ]
    assert run(capsys, *args)[0] == 0
    assert index.stat().st_size > 0
    on_disk = cityos.read_bundle(out)
    in_memory = import_expecting(tmp_path / "m", osm=cityos.demo_osm_path("kouvola"))
    assert on_disk.manifest["layers"] == in_memory.manifest["layers"]
    assert on_disk.manifest["settings"]["node_index"].startswith("sparse_file_array")


def test_access_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundle = tmp_path / "hel"
    run(capsys, "import", "--demo", "helsinki", "--out", str(bundle), "-q")
    out = tmp_path / "access.parquet"
    code, _, err = run(
        capsys,
        "access",
        str(bundle),
        "--out",
        str(out),
        "--category",
        "bus_stop",
        "--cutoff",
        "400",
    )
    assert code == 0, err
    import pandas as pd

    table = pd.read_parquet(out)
    assert list(table.columns) == ["building_id", "category", "distance_m", "facility_id"]
    assert len(table) == len(cityos.read_bundle(bundle).buildings)
    assert (table["distance_m"].dropna() <= 400 + 1e-6).all()
    assert "within 400 m" in err
    code, _, err = run(capsys, "access", str(bundle), "--out", str(out), "-q")
    assert code == 2 and "--force" in _error_line(err)
    code, _, err = run(
        capsys,
        "access",
        str(bundle),
        "--out",
        str(tmp_path / "a.csv"),
        "-q",
        "--category",
        "spaceport",
    )
    assert code == 2 and "spaceport" in _error_line(err)
    assert not (tmp_path / "a.csv").exists()


def test_library_warnings_reach_the_user_labelled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a warning from a library (not cityos' own) is printed once, with its category
    import warnings as w

    import cityos.bundle

    real = cityos.bundle.read_bundle

    def noisy(path: Path) -> cityos.Bundle:
        w.warn("driver note from a library", RuntimeWarning, stacklevel=1)
        return real(path)

    assert run(capsys, "import", "--demo", "helsinki", "--out", str(tmp_path / "b"), "-q")[0] == 0
    monkeypatch.setattr(cityos.bundle, "read_bundle", noisy)
    code, _, err = run(capsys, "info", str(tmp_path / "b"))
    assert code == 0
    assert "cityos: warning: RuntimeWarning: driver note from a library" in err.splitlines()
