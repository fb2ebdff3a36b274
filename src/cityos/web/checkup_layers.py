"""What the dashboard adds to a health check's indicators: the renewal priorities as a layer of
their own (``system = renewal``), the problem list (every failing indicator in a unit, with the
unit's box to locate it) and, with a previous year's results, each value's change and trend."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from cityos.healthcheck.compare import compare_results, read_indicators

__all__ = ["RENEWAL", "changes", "priority_indicators", "problems", "unit_boxes"]

#: the pseudo-system the renewal priorities are drawn as
RENEWAL = "renewal"
_SCORES = (
    ("priority_score", "score", "更新优先级得分", "Renewal priority score"),
    ("priority_per_1000", "score_per_1000_residents", "更新优先级得分（每千人）",
     "Renewal priority score per 1,000 residents"),
)  # fmt: skip


def priority_indicators(priorities: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The renewal priorities (``priorities/priorities.csv``) as indicator rows of system
    :data:`RENEWAL`: the score and the score per 1,000 residents of each ranked unit, no target
    (``no_target``), unconfirmed when any of its score rests on an unconfirmed threshold, the
    formula of ``priorities.json`` as the method and the explanation as the note."""
    meta = folder / "priorities" / "priorities.json"
    formula = json.loads(meta.read_text("utf-8")).get("formula", "") if meta.is_file() else ""
    parts = []
    for ind, column, zh, en in _SCORES:
        if column not in priorities:
            continue
        p = priorities
        unconfirmed = pd.to_numeric(p["unconfirmed_share"], errors="coerce").fillna(0) if "unconfirmed_share" in p else pd.Series(0.0, index=p.index)  # fmt: skip
        parts.append(pd.DataFrame({
            "system": RENEWAL, "level": p["level"], "unit_id": p["unit_id"].astype(str),
            "unit_name": p["unit_name"], "indicator_id": ind, "name_zh": zh, "name_en": en,
            "value": pd.to_numeric(p[column], errors="coerce"), "unit": "", "target": float("nan"),
            "target_op": None, "status": "no_target",
            "confirmed": unconfirmed == 0,
            "method": f"cityos renew: {formula}", "radius_m": float("nan"),
            "sources": "priorities/priorities.csv", "target_source": None,
            "note": p.get("explanation_en"), "direction": None,
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def unit_boxes(units: gpd.GeoDataFrame) -> dict[str, list[float]]:
    """Each unit's box (west, south, east, north; WGS84) by its map key ``LEVEL:UNIT_ID``."""
    b = units.to_crs("EPSG:4326").geometry.bounds
    return {
        str(k): [float(v) for v in row] for k, row in zip(units["key"], b.to_numpy(), strict=True)
    }


#: the order problems are listed in: the city first, then its parts
_LEVEL_ORDER = {"city": 0, "subdistrict": 1, "community": 2}


def problems(indicators: pd.DataFrame) -> pd.DataFrame:
    """Every failing indicator in a unit (the health check's problem list; complete-community
    gaps are those of its system), the city first, then by system, indicator and unit."""
    fail = indicators[(indicators["status"] == "fail") & (indicators["system"] != RENEWAL)].copy()
    fail["_order"] = fail["level"].map(_LEVEL_ORDER).fillna(3)
    fail = fail.sort_values(["_order", "system", "indicator_id", "unit_id"], kind="stable")
    return fail.drop(columns="_order").reset_index(drop=True)


def changes(previous: Path, results: Path) -> pd.DataFrame:
    """Each indicator value's change since the previous year's health check
    (:func:`cityos.healthcheck.compare.compare_results`: old, new, change, and the trend
    ``improved`` / ``worsened`` / ``unchanged`` / ``not_comparable`` by the indicator's
    direction), indexed by system, level, unit and indicator."""
    table = compare_results(read_indicators(previous), read_indicators(results),
                            where=(previous, results))  # fmt: skip
    table["unit_id"] = table["unit_id"].astype(str)
    return table.set_index(["system", "level", "unit_id", "indicator_id"])[
        ["old", "change", "trend"]
    ]
