"""Hotspot tables worked out by hand on a small set of tickets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyproj
import pytest

from cityos.ops.hotspots import HotspotSettings, clusters, counts, monthly_theme, recurrence, trends

D = dt.datetime
S = HotspotSettings(
    k=3,
    m=6,
    cluster_radius_m=100,
    cluster_min_size=3,
    trend_months=3,
    trend_factor=1.5,
    trend_min=3,
)


def tickets() -> pd.DataFrame:
    rows = []
    # C1 parking: one request in each of Jun, Aug, Sep, Nov (4 of the 6 months Jun–Nov)
    for i, m in enumerate([6, 8, 9, 11]):
        rows.append(
            (i + 1, "illegal_parking", "C1", "S1", D(2026, m, 10), "closed_unresolved", False)
        )
    # C2 noise: 4 requests in Oct–Nov, 1 in May–Jul → recent 4 (Sep–Nov) vs before 0 (Jun–Aug)
    for i, m in enumerate([10, 10, 11, 11]):
        rows.append((10 + i, "noise", "C2", "S1", D(2026, m, 5 + i), "dispatched", None))
    rows.append((20, "noise", "C2", "S1", D(2026, 5, 1), "closed_resolved", True))
    frame = pd.DataFrame(rows, columns=["id", "service_code", "community_id", "subdistrict_id",
                                        "requested_at", "state", "resolved"])  # fmt: skip
    frame["month"] = frame["requested_at"].dt.strftime("%Y-%m")
    frame["week"] = frame["requested_at"].dt.strftime("%G-W%V")
    frame["closed"] = frame["state"].str.startswith("closed")
    frame["unresolved"] = frame["closed"] & ~frame["resolved"].fillna(False).astype(bool)
    return frame


def test_counts_per_unit_category_and_month() -> None:
    c = counts(tickets(), "subdistrict", "month")
    got = c.set_index(["service_code", "month"])["requests"]
    assert got[("noise", "2026-10")] == 2 and got[("noise", "2026-11")] == 2
    assert got[("illegal_parking", "2026-06")] == 1 and set(c["unit_id"]) == {"S1"}


def test_recurrence_k_of_m_months() -> None:
    r = recurrence(tickets(), "2026-11", S).set_index(["unit_id", "service_code"])
    assert r.loc[("C1", "illegal_parking"), "months_with_requests"] == 4  # Jun, Aug, Sep, Nov
    assert bool(r.loc[("C1", "illegal_parking"), "recurrent"]) is True
    assert r.loc[("C2", "noise"), "months_with_requests"] == 2  # Oct, Nov (May is outside)
    assert bool(r.loc[("C2", "noise"), "recurrent"]) is False


def test_rising_trend() -> None:
    t = trends(tickets(), "2026-11", S).set_index(["unit_id", "service_code"])
    assert t.loc[("C2", "noise")].tolist()[:2] == [4, 0] and bool(t.loc[("C2", "noise"), "rising"])
    assert (
        t.loc[("C1", "illegal_parking"), "recent"] == 2
        and not t.loc[("C1", "illegal_parking"), "rising"]
    )


def test_monthly_theme_ranks_recurring_unresolved_first() -> None:
    theme = monthly_theme(recurrence(tickets(), "2026-11", S), S)
    first = theme.iloc[0]
    # C1 parking: 4 requests × 4/6 months × unresolved 4/4 = 2.667; C2 noise: 4 × 2/6 × max(0, 0.1)
    assert (first["unit_id"], first["service_code"]) == ("C1", "illegal_parking")
    assert first["score"] == pytest.approx(4 * 4 / 6 * 1.0)
    assert theme.iloc[1]["score"] == pytest.approx(4 * 2 / 6 * 0.1)


class _Flat:
    """A city model stand-in for clustering: WGS84 → UTM 50N metres."""

    _t = pyproj.Transformer.from_crs(4326, 32650, always_xy=True)

    def metres(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self._t.transform(lon, lat)
        return float(x), float(y)


def test_clusters_link_requests_within_the_radius() -> None:
    to_wgs = pyproj.Transformer.from_crs(32650, 4326, always_xy=True)
    base = (448_000.0, 4_417_000.0)
    # a chain 0, 80, 160 m (each within 100 m of the next) and a far point 2 km away
    pts = [to_wgs.transform(base[0] + dx, base[1]) for dx in (0, 80, 160, 2000)]
    frame = pd.DataFrame({
        "id": [1, 2, 3, 4], "service_code": ["garbage"] * 4, "lon": [p[0] for p in pts],
        "lat": [p[1] for p in pts], "community_id": ["C1", "C1", "C2", "C9"],
        "requested_at": [D(2026, 11, d) for d in (1, 2, 3, 4)],
    })  # fmt: skip
    c = clusters(frame, _Flat(), S)  # type: ignore[arg-type]
    assert c["requests"].tolist() == [3] and c["tickets"].tolist() == ["1,2,3"]
    assert c["community_id"].iloc[0] == "C1"


def test_an_empty_store_has_no_hotspots(tmp_path: Path) -> None:
    from cityos.cli import main
    from cityos.ops.hotspots import read_tickets
    from cityos.ops.store import connect

    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    assert main(["db", "upgrade", "--db", url, "-q"]) == 0
    engine = connect(url)
    frame = read_tickets(engine, dt.datetime(2026, 12, 1))
    engine.dispose()
    assert frame.empty and list(frame["month"]) == []
    assert clusters(frame, None, HotspotSettings()).empty  # type: ignore[arg-type]
