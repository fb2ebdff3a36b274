"""The rules on one datastream, worked out by hand: thresholds with hysteresis and a minimum
duration, a pressure drop over a window, data quality suppressing hazards, a silent sensor."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cityos.errors import ConfigError
from cityos.lifelines.detect import evaluate_stream
from cityos.lifelines.rules import bind, load_rules

RULES = load_rules()
T0 = dt.datetime(2026, 12, 1, 8, 0)
QUALITY = [r for r in RULES.rules if not r.hazard]


def at(seconds: list[float]) -> list[dt.datetime]:
    return [T0 + dt.timedelta(seconds=s) for s in seconds]


def test_methane_threshold_with_hysteresis() -> None:
    # orange ≥ 25, red ≥ 50 %LEL, hysteresis 5, cleared after 2 readings below
    times = at([60 * i for i in range(10)])
    values = np.array([3, 26, 30, 55, 48, 44, 19, 18, 30, 10], dtype=float)
    eps = evaluate_stream(1, "methane", "%LEL", times, values, [RULES.get("gas-methane")], [])
    assert [(e.start, e.level, e.last_level, e.end) for e in eps] == [
        # raised at 26 (orange), red at 55; 48 holds red (≥ 50 − 5), 44 falls to orange,
        # 19 and 18 are below 25 − 5: cleared at the second
        (times[1], "red", "orange", times[7]),
        (times[8], "orange", "orange", None),  # 30 again; one reading below is not enough
    ]
    assert eps[0].readings == [(times[1], 26.0), (times[3], 55.0)]


def test_waterlogging_needs_a_minute() -> None:
    # yellow ≥ 15 cm held for 60 s before it is raised; cleared after 3 readings below 13 cm
    times = at([0, 30, 60, 90, 120, 150, 180])
    values = np.array([10, 16, 17, 18, 5, 5, 5], dtype=float)
    (ep,) = evaluate_stream(
        2, "water_depth", "cm", times, values, [RULES.get("waterlogging-depth")], []
    )
    assert (ep.start, ep.level, ep.end) == (times[3], "yellow", times[6])
    assert [v for _, v in ep.readings] == [16.0, 17.0, 18.0]


def test_pressure_drop_over_five_minutes() -> None:
    # a reading every minute; the change is against the reading 300 s before
    times = at([60 * i for i in range(13)])
    values = np.array([0.30] * 6 + [0.26, 0.23, 0.23, 0.23, 0.23, 0.23, 0.30])
    (ep,) = evaluate_stream(
        3, "pressure", "MPa", times, values, [RULES.get("water-pressure-drop")], []
    )
    # 0.26 vs 0.30: −13 % (yellow); 0.23 vs 0.30: −23 % (orange); at 11 min 0.23 vs 0.26: −11.5 %
    # (yellow); at 12 min 0.30 vs 0.23 rises: cleared
    assert (ep.start, ep.level, ep.last_level, ep.end) == (times[6], "orange", "yellow", times[12])


def test_out_of_range_is_a_device_flag_not_a_hazard() -> None:
    times = at([0, 60, 120])
    values = np.array([5.0, 120.0, 6.0])  # 120 % LEL is beyond the detector's range
    eps = evaluate_stream(4, "methane", "%LEL", times, values, [RULES.get("gas-methane")], QUALITY)
    assert [(e.rule, e.start, e.end, e.level) for e in eps] == [
        ("out-of-range", times[1], times[2], "blue")
    ]


def test_a_flat_day_suppresses_hazards() -> None:
    # 26 identical hourly readings of 30 % LEL: flat for a day from the first; no gas alert
    times = at([3600 * i for i in range(26)])
    values = np.full(26, 30.0)
    eps = evaluate_stream(5, "methane", "%LEL", times, values, [RULES.get("gas-methane")], QUALITY)
    assert [(e.rule, e.start, e.end) for e in eps] == [("flatline", times[24], None)]


def test_a_silent_sensor_is_stale() -> None:
    times = at([0, 60])
    eps = evaluate_stream(6, "methane", "%LEL", times, np.array([1.0, 1.0]), [], QUALITY,
                          interval_s=60, now=T0 + dt.timedelta(seconds=60 + 181))  # fmt: skip
    assert [(e.rule, e.start) for e in eps] == [("stale", times[1] + dt.timedelta(seconds=180))]
    fresh = evaluate_stream(6, "methane", "%LEL", times, np.array([1.0, 1.0]), [], QUALITY,
                            interval_s=60, now=T0 + dt.timedelta(seconds=60 + 179))  # fmt: skip
    assert fresh == []


def test_rules_bind_by_property_and_unit() -> None:
    got = {b.datastream_id: b for b in bind(RULES, [(1, "methane", "%LEL"), (2, "Methane", "ppm"),
                                                     (3, "noise", "dB")])}  # fmt: skip
    assert [r.id for r in got[1].rules] == ["gas-methane"]
    assert got[2].rules == () and "the rules watch it in %LEL" in got[2].unwatched
    assert got[3].unwatched == "no rule watches 'noise'"


def test_a_bad_rule_file_names_every_problem(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "rules.toml"
    bad.write_text('[[rule]]\nid = "a"\nkind = "guess"\n\n[[rule]]\nid = "b"\ndomain = "gas"\n'
                   'kind = "threshold"\nproperty = "methane"\nlevels = { red = 50 }\nevent = "e"\nsource = "s"\n')  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_rules(bad)
    message = str(err.value)
    assert (
        "rule a: unknown kind 'guess'" in message
        and "rule b: a threshold rule needs a property and its unit" in message
    )
