"""GCJ-02 / BD-09 conversions: published test vectors and round trips under 1 m."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.sources import china

GEOD = pyproj.Geod(ellps="WGS84")

# (wgs lat, wgs lon, gcj lat, gcj lon): the reference vectors used across the eviltransform ports
WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


def metres(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), WGS_GCJ)
def test_wgs_to_gcj_reference_points(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lon, lat = china.wgs84_to_gcj02(wlon, wlat)
    assert (float(lon), float(lat)) == pytest.approx((glon, glat), abs=1e-9)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), WGS_GCJ)
def test_gcj_to_wgs_reference_points_under_1m(
    wlat: float, wlon: float, glat: float, glon: float
) -> None:
    lon, lat = china.gcj02_to_wgs84(glon, glat)
    assert metres(lon, lat, np.array(wlon), np.array(wlat)) < 0.01


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), WGS_GCJ)
def test_bd09_chain_back_to_wgs_under_1m(
    wlat: float, wlon: float, glat: float, glon: float
) -> None:
    blon, blat = china.gcj02_to_bd09(glon, glat)
    # Baidu adds a further offset of several hundred metres to GCJ-02
    assert 300 < metres(blon, blat, np.array(glon), np.array(glat)) < 1500
    lon, lat = china.bd09_to_wgs84(blon, blat)
    assert metres(lon, lat, np.array(wlon), np.array(wlat)) < 1.0


def test_offset_is_hundreds_of_metres_in_china_and_zero_outside() -> None:
    lon, lat = china.wgs84_to_gcj02([116.4, 24.94], [39.9, 60.17])
    d = metres(lon, lat, np.array([116.4, 24.94]), np.array([39.9, 60.17]))
    assert 100 < d[0] < 1000
    assert d[1] == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=73.5, max_value=134.7),
    st.floats(min_value=18.2, max_value=53.5),
)
def test_round_trips_close_within_1m(lon: float, lat: float) -> None:
    g = china.wgs84_to_gcj02(lon, lat)
    w = china.gcj02_to_wgs84(*g)
    assert metres(w[0], w[1], np.array(lon), np.array(lat)) < 1e-3
    b = china.gcj02_to_bd09(*g)
    g2 = china.bd09_to_gcj02(*b)
    assert metres(g2[0], g2[1], g[0], g[1]) < 1.0


def test_to_wgs84_rejects_unknown_system() -> None:
    with pytest.raises(ValueError, match="unknown"):
        china.to_wgs84("wgs72", 1.0, 2.0)
