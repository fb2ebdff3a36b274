"""Simulated house inspections (房屋体检): a share of the residential buildings with one recorded
event each — a periodic inspection, or a safety appraisal with its JGJ 125 grade (A–D) and
findings that agree with it — checked against the housing-safety register's schema and stored
as the field app stores them. Grade D buildings are watched every quarter (inspection.toml), so
those appraised earlier than that are overdue on the dashboard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from cityos.ops.inspections import check_event, record
from cityos.ops.keys import KeyInfo
from cityos.simulate.plan import Plan

__all__ = ["INSPECTOR", "inspection_events", "write_inspections"]

INSPECTOR = KeyInfo("simulate:inspector", "inspector")
_STRUCTURES = ("砖混", "框架", "剪力墙", "砖木")
#: per grade: findings (foundation, superstructure, envelope), initial judgement, treatment
_BY_GRADE = {
    "A": (("无异常", "无异常", "无异常"), "未发现隐患", "观察使用"),
    "B": (("无异常", "无异常", "轻微"), "一般隐患", "观察使用"),
    "C": (("无异常", "隐患", "轻微"), "一般隐患", "处理使用"),
    "D": (("隐患", "隐患", "隐患"), "严重隐患", "停止使用"),
}


def inspection_events(rng: np.random.Generator, plan: Plan, buildings: pd.DataFrame,
                      residents: pd.Series, end: dt.date) -> list[dict[str, Any]]:  # fmt: skip
    """One event per sampled home (``inspected_share`` of the buildings with estimated
    residents): its fields as the field app sends them, dated within ``within_days`` before
    ``end``."""
    h = plan.housing
    homes = buildings[residents.to_numpy() > 0]
    n = round(len(homes) * float(h["inspected_share"]) / 100.0)
    if n == 0:
        return []
    pick = homes.iloc[np.sort(rng.choice(len(homes), size=n, replace=False))]
    grades = list(h["grades"])
    p = np.array([float(h["grades"][g]) for g in grades])
    first, last = (int(v) for v in h["year_built"])
    out: list[dict[str, Any]] = []
    for _, b in pick.iterrows():
        appraised = rng.uniform(0, 100) < float(h["appraised_share"])
        grade = grades[int(rng.choice(len(grades), p=p / p.sum()))] if appraised else "A"
        (found, sup, env), judgement, treatment = _BY_GRADE[grade]
        day = end - dt.timedelta(days=int(rng.integers(1, int(h["within_days"]))))
        event: dict[str, Any] = {
            "building_id": str(b["building_id"]),
            "inspection_kind": "安全鉴定" if appraised else "定期体检",
            "inspection_date": day.isoformat(), "inspector_org": "模拟检测机构 (simulated)",
            "structure_type": _STRUCTURES[int(rng.integers(len(_STRUCTURES)))],
            "storeys_above": max(1, round(float(b["levels"]))), "use": "住宅",
            "year_built": int(rng.integers(first, last + 1)),
            "foundation": found, "superstructure": sup, "envelope": env,
            "initial_judgement": judgement,
        }  # fmt: skip
        if appraised:
            event |= {"appraisal_grade": grade, "treatment": treatment,
                      "appraisal_report_no": f"SIM-{day.year}-{len(out) + 1:04d}"}  # fmt: skip
            if grade in ("C", "D"):
                event["rectification_status"] = "未整治"
        out.append(event)
    return out


def write_inspections(conn: Connection, events: list[dict[str, Any]], buildings: Collection[str]) -> int:  # fmt: skip
    """Check each event as one register row and store it, recorded the day after the
    inspection at 10:00 (UTC); returns how many."""
    for e in events:
        fields = {k: v for k, v in e.items() if k != "building_id"}
        checked = check_event(e["building_id"], fields, buildings)
        when = dt.datetime.fromisoformat(e["inspection_date"]) + dt.timedelta(days=1, hours=10)
        record(conn, checked, INSPECTOR, when)
    return len(events)
