"""The health check's results pinned: ``indicators.parquet`` of the Helsinki demo and of a seeded
synthetic city must stay what they were when the goldens were written (``tests/data/golden``),
exactly for every text, flag and count, within 1e-9 for every other value (a share in %, a
density) and within 1e-9 or 1e-12 of itself for a numerator or a denominator (an area of
10⁶ m² summed in another order moves by 10⁻⁸ m²). Speed work on the import or the health check
(issue 16) must not change a result.

A deliberate change of results rewrites the goldens: ``CITYOS_WRITE_GOLDEN=1 pytest
tests/healthcheck/test_golden.py``, and the diff of the goldens goes into the commit that
changed them, with the reason. The synthetic city comes from numpy's seeded generator, so a new
numpy in ``requirements.lock`` may need new goldens too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cityos
from benchmarks.synthetic_osm import CitySpec, write_city
from tests.conftest import REPO, expect_warnings

GOLDEN = REPO / "tests" / "data" / "golden"
#: units of measure whose values are counts: compared exactly
COUNT_UNITS = {"个", "栋", "套", "条", "处", "起", "条/处", "户", "人"}
SYNTHETIC = CitySpec("golden", grid=30, buildings=3_000, pois=300, seed=16)


def _indicators(osm: Path, root: Path) -> pd.DataFrame:
    with expect_warnings(r"no facilities in \d+ categories the health check uses"):
        bundle = cityos.import_city(root / "b", osm=osm)
        result = cityos.checkup(bundle)
    return result.indicators.reset_index(drop=True)


def _compare(new: pd.DataFrame, name: str) -> None:
    file = GOLDEN / f"{name}_indicators.parquet"
    if os.environ.get("CITYOS_WRITE_GOLDEN") == "1":
        file.parent.mkdir(parents=True, exist_ok=True)
        new.to_parquet(file, index=False)
    assert file.is_file(), f"{file} missing; write it with CITYOS_WRITE_GOLDEN=1"
    old = pd.read_parquet(file)
    assert list(new.columns) == list(old.columns)
    assert len(new) == len(old)
    key = ["level", "unit_id", "indicator_id"]
    new = new.sort_values(key, kind="stable").reset_index(drop=True)
    old = old.sort_values(key, kind="stable").reset_index(drop=True)
    for column in old.columns:
        a, b = new[column], old[column]
        if pd.api.types.is_float_dtype(b):
            exact = old["unit"].isin(COUNT_UNITS) if column in ("value", "numerator") else None
            both_nan = a.isna() & b.isna()
            rtol = 1e-12 if column in ("numerator", "denominator") else 0.0
            close = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=1e-9)
            bad = ~(both_nan | close)
            if exact is not None:
                bad |= exact & ~both_nan & (a != b)
            assert not bad.any(), (
                f"{name}: {column} differs in {int(bad.sum())} rows, e.g. {old[bad].head(3)[key].to_dict('records')}"
            )
        else:
            same = (a.astype(str) == b.astype(str)) | (a.isna() & b.isna())
            assert same.all(), f"{name}: {column} differs in {int((~same).sum())} rows"


def test_helsinki_results_unchanged(tmp_path: Path) -> None:
    _compare(_indicators(cityos.demo_osm_path(), tmp_path), "helsinki")


@pytest.mark.parametrize("spec", [SYNTHETIC], ids=["synthetic-3000"])
def test_synthetic_city_results_unchanged(tmp_path: Path, spec: CitySpec) -> None:
    osm = tmp_path / "city.osm.pbf"
    write_city(spec, osm)
    _compare(_indicators(osm, tmp_path), "synthetic")
