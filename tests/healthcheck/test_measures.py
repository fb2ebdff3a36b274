"""Indicator methods worked out by hand."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from cityos.errors import InputError
from cityos.healthcheck.measures import (
    area_coverage,
    area_within,
    park_service_area,
    per_capita_area,
    population_coverage,
    rate,
    register_count,
    register_flags,
    register_sum,
    residential_by_unit,
    share,
)

CRS = "EPSG:32650"
UNITS = gpd.GeoDataFrame(
    {"unit_id": ["A", "B"]},
    geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
    crs=CRS,
)


@pytest.mark.parametrize("kind", ["object", "categorical"])
def test_population_coverage(kind: str) -> None:
    units = ["A", "A", "A", "B", None]
    got = population_coverage(
        pd.Series([100.0, 300.0, 301.0, np.nan, np.inf]),
        pd.Series([10.0, 20.0, 30.0, 40.0, 50.0]),
        pd.Series(units, dtype=object)
        if kind == "object"
        else pd.Series(pd.Categorical(units, categories=["B", "C", "A"])),
        radius_m=300,
        units=["A", "B", "C"],
    )
    cols = ["numerator", "denominator", "value"]
    assert got.loc["A", cols].tolist() == [30.0, 60.0, 50.0]  # the building exactly at 300 m counts
    assert got.loc["B", cols].tolist() == [0.0, 40.0, 0.0]
    assert got.loc["C", "denominator"] == 0 and math.isnan(got.loc["C", "value"])  # no data, not 0
    with pytest.raises(InputError, match="radius"):
        population_coverage(
            pd.Series([1.0]), pd.Series([1.0]), pd.Series(["A"]), radius_m=-1, units=["A"]
        )
    with pytest.raises(InputError, match="same buildings"):
        population_coverage(
            pd.Series([1.0]), pd.Series([1.0], index=[7]), pd.Series(["A"]), radius_m=1, units=["A"]
        )


def test_area_coverage() -> None:
    land = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 50)], crs=CRS)
    got = area_coverage(shapely.box(0, 0, 50, 100), land, UNITS)
    assert got.loc["A", ["numerator", "denominator", "value"]].tolist() == pytest.approx(
        [2500.0, 5000.0, 50.0]
    )
    assert got.loc["B", "denominator"] == 0 and math.isnan(got.loc["B", "value"])


def test_residential_by_unit_grows_merges_and_clips() -> None:
    box = shapely.box
    footprints = np.array([
        box(20, 20, 30, 30), box(35, 20, 45, 30),  # 5 m apart: grown 5 m they touch, 35 × 20
        box(60, 60, 70, 70), box(65, 60, 75, 70),  # overlapping: grown, 25 × 20
        box(92, 50, 98, 56),  # grown 5 m it reaches x = 103; clipped at 100: 13 × 16
        shapely.MultiPolygon([box(120, 10, 130, 20), box(160, 10, 170, 20)]),  # 2 × 20 × 20
        box(40, 40, 50, 50),  # in no unit
    ], dtype=object)  # fmt: skip
    units = np.array([*UNITS.geometry, box(0, 100, 100, 200)], dtype=object)
    got = residential_by_unit(footprints, np.array([0, 0, 0, 0, 0, 1, -1]), units, 5.0)
    np.testing.assert_allclose(shapely.area(got), [700 + 500 + 208, 800, 0], rtol=1e-12)
    assert shapely.covers(units[:2], got[:2]).all() and got[2].is_empty
    # mitred: the grown squares stay squares (a round join would cut 4·(1 − π/4)·25 m² a piece)
    assert shapely.get_num_coordinates(got[1]) == 10


def test_area_within() -> None:
    box = shapely.box
    # an L-shaped region in two parts and a pond (a hole) in the first
    region = shapely.MultiPolygon([
        shapely.Polygon(box(0, 0, 100, 100).exterior.coords, [box(40, 40, 60, 60).exterior.coords]),
        box(100, 0, 200, 50),
    ])  # fmt: skip
    geoms = np.array([
        box(10, 10, 30, 30),  # inside: 400
        box(300, 300, 310, 310),  # apart: 0
        box(90, 20, 150, 80),  # across both parts: 10 × 60 + 50 × 30 = 2100
        box(30, 30, 70, 70),  # around the pond: 1600 − 400 = 1200
        shapely.Polygon(),  # empty: 0
    ], dtype=object)  # fmt: skip
    np.testing.assert_allclose(area_within(geoms, region), [400, 0, 2100, 1200, 0], rtol=1e-12)


def test_per_capita_area_counts_features_of_unknown_area() -> None:
    # A: 100 + 50 m² for 30 residents = 5 m²/person, and one pitch mapped as a point (unknown)
    area = pd.Series([100.0, 50.0, np.nan, 20.0])
    unit_of = pd.Series(["A", "A", "A", "B"])
    got = per_capita_area(area, unit_of, pd.Series({"A": 30.0, "B": 0.0}), ["A", "B", "C"])
    assert got.loc["A"].tolist() == pytest.approx([150.0, 30.0, 5.0, 1.0])
    assert math.isnan(got.loc["B", "value"])  # no residents: no data, not 0 or infinite
    assert math.isnan(got.loc["C", "value"]) and got.loc["C", "unknown"] == 0


def test_share_clamps_and_rate_does_not() -> None:
    # float noise of an intersection (a hair above the whole) stays 100 %; empty is NaN, not 0
    got = share([100.00000000000003, 5.0, -1e-12, 1.0], [100.0, 10.0, 10.0, 0.0])
    assert got[:3].tolist() == [100.0, 50.0, 0.0] and math.isnan(got[3])
    assert rate([3.0, 1.0], [2.0, 0.0])[0] == 1.5 and math.isnan(rate([3.0, 1.0], [2.0, 0.0])[1])


def test_register_sum_adds_up_and_blank_is_unknown() -> None:
    register = pd.DataFrame(
        {"unit_id": ["C1", "C2", "C3", "C4", "C5"], "parking": ["30", "12.5", "", "abc", None]}
    )  # fmt: skip
    got, unmatched = register_sum(
        register, key="unit_id", column="parking",
        unit_of=pd.Series({"C1": "S1", "C2": "S1", "C3": "S1", "C4": "S2"}),
        units=["S1", "S2", "S3"],
    )  # fmt: skip
    # S1: 30 + 12.5 from two numbers, C3 blank (the sum is a lower bound), not their mean 21.25
    assert got.loc["S1"].tolist() == [42.5, 2.0, 42.5, 1.0]
    # S2: its only row unreadable, S3: no rows: no value, never 0
    assert math.isnan(got.loc["S2", "value"]) and got.loc["S2", "unknown"] == 1.0
    assert math.isnan(got.loc["S3", "value"])
    assert unmatched == 1  # C5 is in no unit


def test_register_count() -> None:
    register = pd.DataFrame(
        {"building_id": ["B1", "B2", "B3", "B4", "B5", "B6"],
         "structural_hazard": ["1", "0", "是", "yes", "", None]}
    )  # fmt: skip
    got, unmatched = register_count(
        register, key="building_id", column="structural_hazard",
        unit_of=pd.Series({"B1": "A", "B2": "A", "B3": "B", "B5": "B", "B6": "D"}),
        units=["A", "B", "C", "D"],
    )  # fmt: skip
    # columns: flagged, rows with a known flag, value (flagged count), unknown (blank cells)
    assert got.loc["A"].tolist() == [1.0, 2.0, 1.0, 0.0]
    assert got.loc["B"].tolist() == [1.0, 1.0, 1.0, 1.0]  # B5 blank: unknown, not "no hazard"
    assert math.isnan(got.loc["C", "value"])
    assert got.loc["D", ["numerator", "value", "unknown"]].tolist() == [0.0, 0.0, 1.0]
    assert unmatched == 1
    with pytest.raises(InputError, match="gas_hazard"):
        register_count(
            register,
            key="building_id",
            column="gas_hazard",
            unit_of=pd.Series(dtype=object),
            units=["A"],
        )


def test_register_flags_three_states() -> None:
    got = register_flags(pd.Series(["1", "否", " ", None, "有", "2", "0", "maybe", "NaN"]))
    assert got.tolist()[:3] == [True, False, got.tolist()[2]] and pd.isna(got.iloc[2])
    assert pd.isna(got.iloc[3]) and got.iloc[4] is True and got.iloc[5] is True
    assert got.iloc[6] is False and pd.isna(got.iloc[7]) and pd.isna(got.iloc[8])


def test_park_service_area_tiers() -> None:
    def square(x: float, area: float) -> shapely.Polygon:
        side = math.sqrt(area)
        return shapely.box(x, 0, x + side, side)

    parks = gpd.GeoDataFrame(
        {"area_m2": [6000.0, 3000.0, 1000.0]},
        geometry=[square(0, 6000), square(5000, 3000), square(10000, 1000)],
        crs=CRS,
    )
    served = park_service_area(parks, [(5000, math.inf, 500), (2000, 5000, 300)])
    side = math.sqrt(6000)
    assert served.contains(shapely.Point(side + 499, 0)) and not served.contains(
        shapely.Point(side + 501, 0)
    )
    assert served.contains(shapely.Point(5000 - 299, 10)) and not served.contains(
        shapely.Point(5000 - 301, 10)
    )
    assert not served.contains(shapely.Point(10000 - 50, 10))  # below every tier
