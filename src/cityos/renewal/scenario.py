"""The scenario of a siting plan: the bundle with the new sites added, the indicators the
category changes (plus one for the radius asked) and the before/after table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.bundle import Bundle
from cityos.classify import FacilityRules
from cityos.healthcheck.catalogue import (
    IndicatorSystem,
    load_system,
)
from cityos.healthcheck.engine import categories_of

__all__ = [
    "SITING_INDICATOR",
    "affected_systems",
    "before_after",
    "scenario_bundle",
    "siting_system",
]

#: the indicator added for the radius asked: the share of residents within it
SITING_INDICATOR = "siting_coverage"


def siting_system(category: str, radius: float, distance: str, rules: FacilityRules) -> str:
    """The radius asked as a one-indicator system file (reproducible with ``cityos checkup``)."""
    names = rules.categories.get(category, {})
    zh, en = names.get("zh", category), names.get("en", category)
    fields = {
        "id": SITING_INDICATOR,
        "name_zh": f"{zh}{radius:g}米范围覆盖人口比例",
        "name_en": f"Residents within {radius:g} m of a {en}",
        "level": "community",
        "dimension": "城市更新",
        "unit": "%",
        "direction": "higher",
        "data": "OP",
        "confirmed": False,
        "method": "coverage",
    }
    lines = [
        "# written by `cityos site`: the coverage the siting plan optimised",
        "[system]",
        'id = "siting"',
        'version = "1"',
        'name_zh = "设施选址评估"',
        'name_en = "Facility siting scenario"',
        'source = "cityos site"',
        "",
        "[[indicator]]",
        *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()),
        f'params = {{ categories = ["{category}"], radius_m = {radius!r}, measure = "population", '
        f'distance = "{distance}" }}',
        "",
    ]
    return "\n".join(lines)


def affected_systems(
    systems: Sequence[str | IndicatorSystem], category: str
) -> list[IndicatorSystem]:
    out = []
    for s in systems:
        system = s if isinstance(s, IndicatorSystem) else load_system(s)
        keep = tuple(i for i in system.indicators if category in categories_of(i))
        if keep:
            out.append(replace(system, indicators=keep))
    return out


def scenario_bundle(bundle: Bundle, sites: gpd.GeoDataFrame, category: str) -> Bundle:
    fac = bundle.facilities
    added = gpd.GeoDataFrame(
        {
            "facility_id": [f"site:{c}" for c in sites["candidate_id"]],
            "feature_id": sites["candidate_id"].astype(str).to_numpy(),
            "category": category,
            "rule": "cityos site (scenario)",
            "name": sites["name"].astype(object).to_numpy(),
            "area_m2": np.nan,
            "transit": None,
            "source": "scenario",
        },
        geometry=sites.geometry.to_crs(fac.crs).to_numpy(),
        crs=fac.crs,
    )
    facilities = gpd.GeoDataFrame(pd.concat([fac, added], ignore_index=True), crs=fac.crs)
    manifest = json.loads(json.dumps(bundle.manifest, default=str))
    manifest["scenario"] = {
        "base_bundle": str(bundle.path),
        "added": {"category": category, "count": len(added)},
        "note": "facilities marked source=scenario are proposed sites, not existing ones",
    }
    manifest["layers"]["facilities"] = len(facilities)
    layers = dict(bundle.layers)
    layers["facilities"] = facilities
    return Bundle(bundle.path.with_name(f"{bundle.path.name}+sites"), manifest, layers,
                  dict(bundle.registers))  # fmt: skip


def before_after(before: pd.DataFrame, after: pd.DataFrame | None) -> pd.DataFrame:
    keys = ["indicator_id", "level", "unit_id"]
    cols = [*keys, "unit_name", "system", "name_zh", "name_en", "unit", "radius_m", "direction",
            "target", "target_op"]  # fmt: skip
    out = before[[*cols, "value", "numerator", "denominator", "status"]].rename(
        columns={"value": "before", "numerator": "numerator_before",
                 "denominator": "denominator_before", "status": "status_before"}
    )  # fmt: skip
    if after is None:
        return out
    a = after[[*keys, "value", "numerator", "denominator", "status"]].rename(
        columns={"value": "after", "numerator": "numerator_after",
                 "denominator": "denominator_after", "status": "status_after"}
    )  # fmt: skip
    out = out.merge(a, on=keys, how="left")
    out["change"] = out["after"] - out["before"]
    return out
