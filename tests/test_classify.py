"""The classification tables: facility rules, walkability, building use, levels and heights."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityos.classify import (
    FacilityRules,
    _pattern_chars,
    load_osm_tables,
    parse_height,
    parse_levels,
)
from cityos.errors import ConfigError


@pytest.fixture(scope="module")
def rules() -> FacilityRules:
    return FacilityRules.load()


def cats(rules: FacilityRules, **kw: object) -> set[str]:
    return {c for c, _ in rules.classify(**kw)}  # type: ignore[arg-type]


REQUIRED = [
    "kindergarten", "childcare", "primary_school", "middle_school", "school", "community_health",
    "clinic", "hospital", "elderly_care", "market", "supermarket", "convenience", "pharmacy",
    "community_centre", "cultural_centre", "sports_ground", "fitness", "playground", "toilets",
    "bus_stop", "rail_station", "fire_station", "police", "shelter", "fuel", "charging_station",
]  # fmt: skip


def test_required_categories_exist_and_each_has_a_rule(rules: FacilityRules) -> None:
    assert set(REQUIRED) <= set(rules.categories)
    assert set(REQUIRED) <= {r.category for r in rules.rules}


OSM_CASES: list[tuple[dict[str, str], str | None, set[str]]] = [
    ({"amenity": "kindergarten"}, None, {"kindergarten"}),
    ({"amenity": "kindergarten", "nursery": "yes"}, None, {"kindergarten", "childcare"}),
    ({"amenity": "childcare"}, None, {"childcare"}),
    ({"amenity": "school", "isced:level": "1"}, None, {"primary_school"}),
    ({"amenity": "school", "isced:level": "1;2"}, None, {"primary_school", "middle_school"}),
    ({"amenity": "school", "isced:level": "3"}, None, {"high_school"}),
    ({"amenity": "school"}, None, {"school"}),
    ({"amenity": "school"}, "九年一贯制学校", {"primary_school", "middle_school"}),
    ({"amenity": "school"}, "上海市卢湾高级中学", {"high_school"}),
    ({"amenity": "school"}, "市南中学", {"middle_school"}),
    ({"amenity": "clinic"}, "和平里社区卫生服务站", {"community_health"}),
    ({"amenity": "clinic"}, None, {"clinic"}),
    ({"railway": "station"}, "体育场站", {"rail_station"}),
    ({"amenity": "hospital"}, None, {"hospital"}),
    ({"amenity": "social_facility", "social_facility": "nursing_home"}, None, {"nursing_home"}),
    (
        {
            "amenity": "social_facility",
            "social_facility": "day_care",
            "social_facility:for": "senior",
        },
        None,
        {"elderly_care"},
    ),
    (
        {
            "amenity": "social_facility",
            "social_facility": "group_home",
            "social_facility:for": "child",
        },
        None,
        set(),
    ),
    ({"amenity": "marketplace"}, None, {"market"}),
    ({"shop": "greengrocer"}, None, {"supermarket"}),
    ({"shop": "convenience"}, None, {"convenience"}),
    ({"amenity": "toilets"}, None, {"toilets"}),
    ({"amenity": "toilets", "access": "customers"}, None, set()),
    ({"highway": "bus_stop"}, None, {"bus_stop"}),
    ({"railway": "station", "station": "subway"}, None, {"rail_station"}),
    ({"railway": "station", "usage": "tourism"}, None, set()),
    ({"emergency": "assembly_point"}, None, {"shelter"}),
    ({"amenity": "fire_station"}, None, {"fire_station"}),
    ({"amenity": "police"}, None, {"police"}),
    ({"amenity": "fuel"}, None, {"fuel"}),
    ({"amenity": "charging_station"}, None, {"charging_station"}),
    ({"leisure": "pitch", "sport": "basketball"}, None, {"sports_ground"}),
    ({"leisure": "fitness_station"}, None, {"fitness"}),
    ({"leisure": "playground"}, None, {"playground"}),
    ({"amenity": "community_centre"}, "和平里社区党群服务中心", {"community_centre"}),
    ({"amenity": "arts_centre"}, None, {"cultural_centre"}),
    ({"amenity": "pharmacy"}, None, {"pharmacy"}),
    ({"highway": "residential"}, "幼儿园路", set()),  # a road named after a kindergarten
    ({"building": "yes"}, "实验幼儿园", {"kindergarten"}),
    (
        {"amenity": "hospital"},
        "宠物医院",
        {"hospital"},
    ),  # the tag wins; the name rule excludes pets
    ({"shop": "pet"}, "宠物医院", set()),
]


@pytest.mark.parametrize(("tags", "name", "expected"), OSM_CASES)
def test_osm_tags_and_names(
    rules: FacilityRules, tags: dict[str, str], name: str | None, expected: set[str]
) -> None:
    assert cats(rules, tags=tags, name=name) == expected


def test_memo_key_groups_only_features_the_rules_treat_alike(rules: FacilityRules) -> None:
    # every tag set of the cases above with names of each kind: none, plain ones (matching no
    # rule's pattern) and ones a name or not_name rule reads
    names = [None, "", "设施1", "Main Street 5", "实验幼儿园", "宠物医院", "体育场站"]
    seen: dict[tuple[object, ...], set[tuple[str, str]]] = {}
    for tags, _name, _expected in OSM_CASES:
        for name in names:
            key = rules.memo_key(tags, name)
            got = set(rules.classify(tags=tags, name=name))
            if name in ("实验幼儿园", "宠物医院", "体育场站"):
                assert key is None, name
                continue
            assert key is not None
            assert seen.setdefault(key, got) == got, (tags, name)
    # plain names share a key; a tag a rule reads (access) splits one
    assert rules.memo_key({"amenity": "toilets"}, "设施1") == rules.memo_key(
        {"amenity": "toilets", "note": "x"}, "Main Street 5"
    )
    assert rules.memo_key({"amenity": "toilets"}, None) != rules.memo_key(
        {"amenity": "toilets", "access": "customers"}, None
    )


@pytest.mark.parametrize(
    ("patterns", "usable"),
    [
        (["幼儿园|kindergarten", "高中$|(小学|幼儿园)$"], True),
        (["幼.园"], False),  # any character
        (["\\d+号"], False),  # an escape: a class of characters
        (["[幼托]儿"], False),
        (["托儿所|x?"], False),  # matches the empty text, so every text
    ],
)
def test_pattern_characters_only_when_they_decide(patterns: list[str], usable: bool) -> None:
    chars = _pattern_chars(patterns)
    assert (chars is not None) == usable
    if chars is not None:
        assert chars.search("设施1") is None  # shares no character: matches no pattern
        assert chars.search("KINDER") is not None  # case-insensitive, as the patterns
        assert chars.search("小卖部") is not None  # shares one: the patterns must be tried


@pytest.mark.parametrize(
    ("amap", "name", "expected"),
    [
        ("科教文化服务;学校;幼儿园", "思南路幼儿园", {"kindergarten"}),
        ("科教文化服务;学校;小学", "蓬莱路第二小学", {"primary_school"}),
        ("科教文化服务;学校;中学", "市南中学", {"middle_school"}),
        ("科教文化服务;学校;中学", "上海市卢湾高级中学", {"high_school"}),
        ("科教文化服务;学校;高等院校", "上海交通大学护理学院", {"university"}),
        ("医疗保健服务;综合医院;卫生院", "某镇卫生院", {"community_health"}),
        ("医疗保健服务;诊所;诊所", "张医生诊所", {"clinic"}),
        ("医疗保健服务;综合医院;三级甲等医院", "上海长征医院", {"hospital"}),
        ("医疗保健服务;动物医疗场所;宠物诊所", "宠物诊所", set()),
        ("交通设施服务;公交车站;公交车站相关", "城隍庙(公交站)", {"bus_stop"}),
        ("交通设施服务;地铁站;地铁站", "人民广场(地铁站)", {"rail_station"}),
        (
            "交通设施服务;地铁站;地铁站",
            "上海体育场(地铁站)",
            {"rail_station"},
        ),  # not a sports ground
        ("交通设施服务;地铁站;地铁站", "上海图书馆(地铁站)", {"rail_station"}),
        ("住宿服务;宾馆酒店;四星级宾馆|餐饮服务;糕饼店;糕饼店", "国际饭店", set()),
    ],
)
def test_amap_type_paths(rules: FacilityRules, amap: str, name: str, expected: set[str]) -> None:
    assert cats(rules, name=name, amap=amap) == expected


def test_every_match_names_its_rule(rules: FacilityRules) -> None:
    found = rules.classify(tags={"amenity": "kindergarten"}, name="阳光幼儿园")
    assert found == [("kindergarten", "kindergarten.tag")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[categories]\na = {}\n[[rules]]\nid='x'\ncategory='b'\nname='y'\n", "unknown category"),
        ("[categories]\na = {}\n[[rules]]\nid='x'\ncategory='a'\n", "needs `tags`"),
        (
            "[categories]\na = {}\n[[rules]]\nid='x'\ncategory='a'\nname='('\n",
            "bad regular expression",
        ),
        (
            "[categories]\na = {}\n[[rules]]\nid='x'\ncategory='a'\nname='y'\ncolour='red'\n",
            "unknown field",
        ),
        ("[categories]\nBad = {}\n", "snake_case"),
        ("[categories\n", "not valid TOML"),
    ],
)
def test_bad_rules_files_are_clear(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=message):
        FacilityRules.load(path)


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "residential"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "cycleway", "foot": "designated"}, True),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "service", "access": "private", "foot": "yes"}, True),
        ({"highway": "service", "service": "private"}, False),
        ({"highway": "primary", "foot": "no"}, False),
        ({"highway": "pedestrian", "area": "yes"}, False),
        ({"highway": "construction"}, False),
        ({"railway": "rail"}, False),
    ],
)
def test_walkable(tags: dict[str, str], walkable: bool) -> None:
    assert load_osm_tables().is_walkable(tags) is walkable


@pytest.mark.parametrize(
    ("tags", "use"),
    [
        ({"building": "apartments"}, "residential"),
        ({"building": "dormitory"}, "residential"),
        ({"building": "office"}, "non_residential"),
        ({"building": "yes"}, "unknown"),
        ({"building": "yes", "building:use": "residential"}, "residential"),
        ({"building": "yes", "building:use": "retail"}, "non_residential"),
        ({"building": "no"}, None),
    ],
)
def test_building_use(tags: dict[str, str], use: str | None) -> None:
    assert load_osm_tables().buildings.use(tags) == use


@pytest.mark.parametrize(
    ("value", "levels"),
    [
        ("5", 5.0),
        ("5.5", 5.5),
        ("3;5", 5.0),
        ("4 levels", 4.0),
        ("abc", None),
        ("0", None),
        ("", None),
        (None, None),
        ("500", None),
    ],
)
def test_parse_levels(value: str | None, levels: float | None) -> None:
    assert parse_levels(value) == levels


@pytest.mark.parametrize(
    ("value", "height"),
    [
        ("12", 12.0),
        ("12.5 m", 12.5),
        ("12,5", 12.5),
        ("40'", 40 * 0.3048),
        ("10 ft", 3.048),
        ("tall", None),
        ("-3", None),
    ],
)
def test_parse_height(value: str, height: float | None) -> None:
    assert parse_height(value) == (pytest.approx(height) if height else None)
