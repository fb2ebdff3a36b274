"""The arrival process and the drawn delays, against numbers worked out by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from cityos.simulate.plan import Delay, load_plan
from cityos.simulate.tickets import arrival_times, drawn_categories, drawn_delay

START = dt.datetime(2026, 11, 2)  # a Monday, 00:00 UTC


def test_arrivals_follow_the_local_hour_and_the_weekday() -> None:
    # all weight on 10:00 local (h = 24 there, tiny elsewhere); Shanghai is UTC+8: 02:00 UTC.
    hourly = tuple(24.0 if h == 10 else 1e-9 for h in range(24))
    weekly = (1.0,) * 5 + (1e-9, 1e-9)  # nothing at the weekend
    rng = np.random.default_rng(7)
    times = arrival_times(rng, START, START + dt.timedelta(days=14), 100.0, hourly, weekly,
                          ZoneInfo("Asia/Shanghai"))  # fmt: skip
    # mean(h) ≈ 1, so the 10:00 hour's mean is 100/24 × 24 = 100; mean(w) = 5/7, so a weekday
    # has 100 × 7/5 = 140; 10 weekdays in the fortnight: about 1,400
    assert 1400 - 4 * 1400**0.5 < len(times) < 1400 + 4 * 1400**0.5
    assert {t.hour for t in times} == {2}
    assert {t.weekday() for t in times} <= {0, 1, 2, 3, 4}
    assert (
        times == sorted(times) and times[0] >= START and times[-1] < START + dt.timedelta(days=14)
    )


def test_a_flat_profile_gives_the_plain_rate() -> None:
    rng = np.random.default_rng(1)
    times = arrival_times(rng, START, START + dt.timedelta(days=30), 11.0, (1.0,) * 24, (1.0,) * 7,
                          ZoneInfo("UTC"))  # fmt: skip
    assert 330 - 4 * 330**0.5 < len(times) < 330 + 4 * 330**0.5


def test_the_same_seed_gives_the_same_arrivals() -> None:
    args = (START, START + dt.timedelta(days=3), 50.0, (1.0,) * 24, (1.0,) * 7, ZoneInfo("UTC"))
    a = arrival_times(np.random.default_rng(3), *args)
    b = arrival_times(np.random.default_rng(3), *args)
    c = arrival_times(np.random.default_rng(4), *args)
    assert a == b and a != c


def test_delays_have_the_plans_median_and_late_share() -> None:
    # median 0.25 and sigma 0.8 of a 24 h limit: median 6 h; late (> 24 h) when
    # Z > ln 4 / 0.8 = 1.733, P = 4.16 %
    rng = np.random.default_rng(11)
    limit = dt.timedelta(hours=24)
    draws = np.array([drawn_delay(rng, Delay(0.25, 0.8), limit) / limit for _ in range(20000)])
    assert np.median(draws) == pytest.approx(0.25, rel=0.03)
    assert (draws > 1).mean() == pytest.approx(0.0416, abs=0.006)


def test_the_built_in_plan_says_where_its_numbers_come_from() -> None:
    plan = load_plan()
    assert sum(s for s, _ in plan.categories.values()) == pytest.approx(100.0)
    assert plan.categories["inquiry"][0] == pytest.approx(58.5)  # Beijing 2019-2021 [P]
    assert plan.per_1000_per_day == pytest.approx(11_039_400 / 21_890_000 / 366 * 1000, rel=0.01)
    assert "OPS.md" in plan.source or plan.source == "built-in simulate.toml"


def test_categories_are_drawn_by_their_shares() -> None:
    # shares 60 / 30 / 10 % of 40,000 draws: 24,000 / 12,000 / 4,000, sd ≤ √(40000 × .6 × .4) ≈ 98
    plan = dataclasses.replace(
        load_plan(), categories={"a": (60.0, "residents"), "b": (30.0, "streets"),
                                 "c": (10.0, "facilities")},
    )  # fmt: skip
    drawn = drawn_categories(np.random.default_rng(5), plan, 40_000)
    counts = {c: drawn.count(c) for c in "abc"}
    assert abs(counts["a"] - 24_000) < 500 and abs(counts["b"] - 12_000) < 500
    assert abs(counts["c"] - 4_000) < 300 and sum(counts.values()) == 40_000
    assert drawn_categories(np.random.default_rng(5), plan, 0) == []
