"""Indicator systems as data: the built-in 2024 system and the checks on a city's own files."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from cityos.errors import ConfigError
from cityos.healthcheck import load_system
from cityos.healthcheck.catalogue import METHODS

REPO = Path(__file__).resolve().parents[2]


def test_mohurd_2024_has_the_61_basic_indicators() -> None:
    system = load_system("mohurd-2024")
    assert system.id == "mohurd-2024"
    assert len(system.indicators) == 61
    assert Counter(i.level for i in system.indicators) == {
        "housing": 10,
        "community": 12,
        "subdistrict": 8,
        "city": 31,
    }
    assert [i.no for i in system.indicators] == list(range(1, 62))
    assert len({i.id for i in system.indicators}) == 61
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i.id) for i in system.indicators)


def test_names_match_the_standards_table(shared_data: Path) -> None:
    # every Chinese name in ../shared/STANDARDS.md §2.2 appears once, at its number
    text = (shared_data.parent / "STANDARDS.md").read_text("utf-8")
    table = text[text.index("#### 2.2.1") : text.index("Additional city-level items")]
    names = {int(m[1]): m[2].strip() for m in re.finditer(r"^\| (\d+) \| ([^|]+) \|", table, re.M)}
    system = load_system("mohurd-2024")
    assert {i.no: i.name_zh for i in system.indicators} == names


def test_directions_targets_and_confirmation() -> None:
    by_id = {i.id: i for i in load_system("mohurd-2024").indicators}
    assert by_id["road_network_density"].target == 8 and by_id["road_network_density"].confirmed
    assert by_id["housing_structural_hazard"].direction == "lower"
    assert by_id["middle_school_coverage"].direction == "higher"
    assert by_id["middle_school_coverage"].params["radius_m"] == 1000
    assert not by_id["middle_school_coverage"].confirmed  # the radius is [R]
    assert all(i.target_source for i in by_id.values() if i.target is not None)
    assert by_id["community_kindergarten_substandard"].proxy is not None


CITY_SYSTEM = """
[system]
id = "hubei-2025-extra"
version = "2025.1"
name_zh = "湖北省自选指标"

[[indicator]]
id = "fresh_market_coverage"
name_zh = "菜市场（生鲜超市）覆盖率"
name_en = "Fresh-market coverage"
level = "subdistrict"
dimension = "功能完善"
unit = "%"
direction = "higher"
confirmed = false
target = 90
target_op = ">="
target_source = "宜昌 2025 达标线 [P]"
method = "coverage"
params = { categories = ["market", "supermarket"], radius_m = 500, measure = "residential_area" }
"""


def test_a_city_system_file(tmp_path: Path) -> None:
    path = tmp_path / "city.toml"
    path.write_text(CITY_SYSTEM, "utf-8")
    system = load_system(path)
    assert system.id == "hubei-2025-extra" and system.indicators[0].params["radius_m"] == 500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('method = "coverage"', 'method = "magic"'), "unknown method 'magic'"),
        (('level = "subdistrict"', 'level = "province"'), "level 'province'"),
        (('unit = "%"\n', ""), "missing field 'unit'"),
        ((', measure = "residential_area"', ""), "needs params \\['measure'\\]"),
        (('target_source = "宜昌 2025 达标线 [P]"\n', ""), "target needs its target_source"),
        (("[system]\n", "[sys]\n"), "missing \\[system\\]"),
    ],
)
def test_bad_system_files_name_the_indicator_and_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(CITY_SYSTEM.replace(*change), "utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_system(path)
    assert "bad.toml" in str(err.value)


def test_unknown_system_name() -> None:
    with pytest.raises(ConfigError, match="mohurd-2024"):
        load_system("mohurd-1999")


def test_every_method_declares_params() -> None:
    assert all(required for required, _ in METHODS.values())
