"""The flat reader's array helpers (cityos.sources.osm_arrays) against plain indexing."""

from __future__ import annotations

import numpy as np
import pytest

from cityos.sources.osm_arrays import _ranges, _take_ranges


@pytest.mark.parametrize(
    "src",
    [
        np.arange(40, dtype=np.float64).reshape(20, 2),  # coordinate pairs
        np.arange(20, dtype=np.int32) * 7,
    ],
    ids=["pairs", "int32"],
)
def test_take_ranges_is_indexing_by_the_ranges(src: np.ndarray) -> None:
    lo = np.array([3, 0, 10, 10, 19], dtype=np.int64)
    hi = np.array([6, 2, 10, 14, 20], dtype=np.int64)  # an empty range, one to the end
    want = src[[3, 4, 5, 0, 1, 10, 11, 12, 13, 19]]
    np.testing.assert_array_equal(_take_ranges(src, lo, hi), want)
    np.testing.assert_array_equal(src[_ranges(lo, hi)], want)


def test_take_ranges_refuses_a_range_outside() -> None:
    with pytest.raises(ValueError, match="outside"):
        _take_ranges(np.zeros(5), np.array([3]), np.array([6]))
