"""The nearest facility per category as aligned arrays, and the access table built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cityos
from cityos.network import NearestByCategory, accessibility_table, nearest_by_category

NAN = np.nan


def _three_buildings() -> NearestByCategory:
    """Three buildings, two categories; values chosen by hand."""
    return NearestByCategory(
        building_ids=np.array(["b1", "b2", "b3"], dtype=object),
        distance={"school": np.array([120.0, NAN, 700.0]), "clinic": np.array([NAN, NAN, 300.0])},
        facility={"school": np.array([1, -1, 0]), "clinic": np.array([-1, -1, 0])},
        facility_ids={
            "school": np.array(["s0", "s1"], dtype=object),
            "clinic": np.array(["c0"], dtype=object),
        },
        attrs={"method": "network"},
    )


def test_min_distance_skips_what_is_out_of_reach() -> None:
    near = _three_buildings()
    np.testing.assert_array_equal(near.min_distance(["school", "clinic"]), [120.0, NAN, 300.0])
    np.testing.assert_array_equal(near.min_distance(["school"]), [120.0, NAN, 700.0])
    # a category not measured counts as none within reach, never as 0
    np.testing.assert_array_equal(near.min_distance(["market"]), [NAN, NAN, NAN])
    mine = near.min_distance(["clinic"])
    mine[2] = 0.0  # the caller's copy: the kept arrays do not change
    assert near.distance["clinic"][2] == 300.0


def test_facility_ids_and_the_table() -> None:
    near = _three_buildings()
    assert near.facility_id("school").tolist() == ["s1", None, "s0"]
    assert near.facility_id("market").tolist() == [None, None, None]
    table = near.table()
    assert table["building_id"].tolist() == ["b1", "b2", "b3"] * 2
    assert table["category"].tolist() == ["school"] * 3 + ["clinic"] * 3
    assert list(table["category"].cat.categories) == ["clinic", "school"]
    assert table["facility_id"].isna().tolist() == [False, True, False, True, True, False]
    assert table["facility_id"].dropna().tolist() == ["s1", "s0", "c0"]
    assert table.attrs == {"method": "network"}


def test_the_arrays_and_the_table_agree_on_helsinki(helsinki: cityos.Bundle) -> None:
    near = nearest_by_category(helsinki, categories=["bus_stop", "pharmacy"], cutoff=800)
    table = accessibility_table(helsinki, categories=["bus_stop", "pharmacy"], cutoff=800)
    pd.testing.assert_frame_equal(near.table(), table)
    per_building = table.groupby("building_id", observed=True, sort=False)["distance_m"].min()
    both = near.min_distance(["bus_stop", "pharmacy"])
    np.testing.assert_array_equal(per_building.reindex(near.building_ids).to_numpy(), both)
