"""`cityos alerts replay` evaluates the rules on history — a table of readings or the store —
and reports the alerts they would have raised, so a city tunes thresholds before going live."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cityos.cli import main
from cityos.lifelines.entities import ENTITY_SETS
from cityos.lifelines.sta import create
from cityos.ops.store import connect, upgrade

READINGS = """datastream,property,unit,time,result
W-1,methane,%LEL,2026-12-01T08:00:00Z,3
W-1,methane,%LEL,2026-12-01T08:01:00Z,26
W-1,methane,%LEL,2026-12-01T08:02:00Z,55
W-1,methane,%LEL,2026-12-01T08:03:00Z,10
W-1,methane,%LEL,2026-12-01T08:04:00Z,9
N-1,noise,dB,2026-12-01T08:00:00Z,80
"""


def test_replay_a_table_of_readings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "readings.csv"
    src.write_text(READINGS)
    out = tmp_path / "episodes.csv"
    assert main(["alerts", "replay", "--observations", str(src), "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "alerts: red 1" in text and "unwatched: datastream N-1: no rule watches 'noise'" in text
    (ep,) = pd.read_csv(out).to_dict("records")
    # raised at 26 (orange), red at 55; 10 and 9 are below 25 − 5: cleared at the second
    assert (ep["rule"], ep["max_level"], ep["raised_at"], ep["cleared_at"]) == (
        "gas-methane", "red", "2026-12-01 08:01:00", "2026-12-01 08:04:00")  # fmt: skip
    # a stricter rule file: orange from 2 % LEL raises it a minute earlier
    strict = tmp_path / "strict.toml"
    strict.write_text('[[rule]]\nid = "gas-strict"\ndomain = "gas"\nkind = "threshold"\nproperty = "methane"\n'
                      'unit = "%LEL"\nlevels = { orange = 2.0 }\nevent = "gas"\nsource = "trial"\n')  # fmt: skip
    assert (
        main(
            [
                "alerts",
                "replay",
                "--observations",
                str(src),
                "--rules",
                str(strict),
                "--out",
                str(out),
                "--force",
                "-q",
            ]
        )
        == 0
    )
    assert pd.read_csv(out)["raised_at"].tolist() == ["2026-12-01 08:00:00"]


def test_replay_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    engine = connect(db)
    upgrade(engine)
    thing = {"name": "B-1", "description": "bridge", "Datastreams": [{
        "name": "disp", "description": "", "observationType": "OM_Measurement",
        "unitOfMeasurement": {"name": "mm", "symbol": "mm", "definition": ""},
        "Sensor": {"name": "s", "description": "", "encodingType": "text/plain", "metadata": "m"},
        "ObservedProperty": {"name": "displacement", "definition": "d", "description": ""}}]}  # fmt: skip
    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], thing, lambda x, y: {})
        for minute, value in enumerate([2.0, 12.0, 25.0, 3.0, 2.0, 1.0]):
            feature = {"name": "f", "description": "", "encodingType": "application/geo+json",
                       "feature": {"type": "Point", "coordinates": [116.4, 39.9]}}  # fmt: skip
            create(conn, ENTITY_SETS["Observations"], {
                "result": value, "phenomenonTime": f"2026-11-30T23:{minute:02d}:00Z",
                "Datastream": {"@iot.id": 1}, "FeatureOfInterest": feature}, lambda x, y: {})  # fmt: skip
    engine.dispose()
    out = tmp_path / "episodes.csv"
    assert main(["alerts", "replay", "--db", db, "--from", "2026-11-01", "--to", "2026-12-01",
                 "--out", str(out), "-q"]) == 0  # fmt: skip
    assert "6 readings of 1 datastreams" in capsys.readouterr().out
    # yellow ≥ 10, orange ≥ 20 mm: raised at 12, orange at 25, cleared at the third reading
    # below 10 − 1
    (ep,) = pd.read_csv(out).to_dict("records")
    assert (ep["rule"], ep["max_level"], ep["raised_at"], ep["cleared_at"]) == (
        "bridge-displacement", "orange", "2026-11-30 23:01:00", "2026-11-30 23:05:00")  # fmt: skip


def test_replay_refuses_a_bad_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("datastream,time,result\nW-1,2026-12-01T08:00:00Z,3\n")
    assert main(["alerts", "replay", "--observations", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"cityos: error: {src}: no column property, unit; give datastream, property, unit, time, result"
    ]
