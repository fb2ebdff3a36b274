"""The health check as an Excel workbook in the shape of the reporting tables cities submit.

Sheets: one per level (城区 city, 街区 subdistrict, 社区 community) with one row per unit and
indicator — 序号, 指标, indicator, 单位, 体检单元, 数值, 目标, 状态, 阈值已确认, 方法 — the problem list
(问题清单), and a methods sheet (data, population method, systems, credits). Values are written
as numbers, never text; missing values are empty cells with the status 无数据 (no data).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from cityos.healthcheck.policy import Policy
from cityos.healthcheck.results import as_number, read_results
from cityos.outputs import atomic_file

__all__ = ["LEVEL_SHEETS", "STATUS_ZH", "write_workbook"]

LEVEL_SHEETS = {
    "city": "城区 city",
    "subdistrict": "街区 subdistrict",
    "community": "社区 community",
}
STATUS_ZH = {
    "pass": "达标 pass",
    "fail": "不达标 fail",
    "no_data": "无数据 no data",
    "no_target": "无目标值 no target",
}
HEADER = ["序号 no", "指标", "indicator", "单位 unit", "体检单元 unit", "单元编号 unit id", "数值 value",
          "目标 target", "状态 status", "阈值已确认 confirmed", "方法 method", "体系 system",
          "说明 note", "提示 warning"]  # fmt: skip


def number_format(decimals: int) -> str:
    """The Excel number format showing ``decimals`` places (``0``, ``0.0``, ``0.00`` …)."""
    return "0" if decimals == 0 else "0." + "0" * decimals


def _widths(ws: Any, widths: list[int]) -> None:
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w


def write_workbook(results: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the workbook for a results folder to ``out`` (.xlsx, through a temporary file)."""
    target = Path(out)
    saved = read_results(results)
    indicators, problems, summary = saved.indicators, saved.problems, saved.summary
    policy = Policy.from_record(summary.get("policy"))
    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    order = {iid: k for k, iid in enumerate(dict.fromkeys(indicators["indicator_id"]))}
    for level, title in LEVEL_SHEETS.items():
        rows = indicators[indicators["level"] == level]
        ws = wb.create_sheet(title)
        ws.append(HEADER)
        for cell in ws[1]:
            cell.font = bold
        rows = rows.assign(_k=rows["indicator_id"].map(order)).sort_values(
            ["_k", "unit_id"], kind="stable"
        )
        for rec in rows.to_dict("records"):
            unit = str(rec["unit"])
            ws.append([
                int(rec["_k"]) + 1, rec["name_zh"], rec["name_en"], unit, rec["unit_name"], rec["unit_id"],
                policy.for_people(rec["value"], unit), policy.for_people(rec["target"], unit),
                STATUS_ZH.get(rec["status"], rec["status"]), "是 yes" if rec.get("confirmed") else "否 no",
                rec.get("method"), rec.get("system"), rec.get("note") or None, rec.get("warning") or None,
            ])  # fmt: skip
            fmt = number_format(policy.decimals_for(unit))
            ws.cell(ws.max_row, 7).number_format = fmt
            ws.cell(ws.max_row, 8).number_format = fmt
        ws.freeze_panes = "A2"
        _widths(ws, [8, 36, 40, 10, 22, 22, 12, 10, 16, 14, 60, 18, 60, 60])
    ws = wb.create_sheet("问题清单 problems")
    ws.append(list(problems.columns))
    for cell in ws[1]:
        cell.font = bold
    cols = list(problems.columns)
    for rec in problems.to_dict("records"):
        unit = str(rec.get("unit", ""))
        ws.append([policy.for_people(rec[c], unit) if c in ("value", "target")
                   else as_number(rec[c]) if isinstance(rec[c], float) else rec[c] for c in cols])  # fmt: skip
        for c in ("value", "target"):
            if c in cols:
                ws.cell(ws.max_row, cols.index(c) + 1).number_format = number_format(
                    policy.decimals_for(unit)
                )
    ws = wb.create_sheet("方法 methods")
    ws.append(["项目 item", "内容 content"])
    for cell in ws[1]:
        cell.font = bold
    meta = [
        (
            "体检体系 systems",
            "; ".join(f"{s['id']} {s.get('version', '')}" for s in summary.get("systems", [])),
        ),
        ("数据截至 as of", summary.get("as_of")),
        ("坐标系 CRS (measurement)", summary.get("crs")),
        (
            "人口方法 population",
            json.dumps(
                {
                    k: v
                    for k, v in summary.get("population", {}).items()
                    if k not in ("implausible", "unallocated")
                },
                ensure_ascii=False,
            ),
        ),
        ("体检单元 units", json.dumps(summary.get("units", {}), ensure_ascii=False)),
        ("距离 distances", json.dumps(summary.get("distances", {}), ensure_ascii=False)),
        (
            "三种状态 states",
            "达标、不达标、无数据（未测量，附原因）；缺失数据从不计为不达标 / met, not met, "
            "unmeasured (no data, with the reason): missing data is never a failure",
        ),
        (
            "人口提示 population warnings",
            "\n".join(
                o.get("message_zh", "")
                for o in summary.get("population", {}).get("implausible", [])
            )
            or None,
        ),
        ("政策参数 policy", json.dumps(summary.get("policy", {}), ensure_ascii=False)),
        ("数据来源 credits", "; ".join(summary.get("attribution", []))),
    ]
    for item, content in meta:
        ws.append([item, None if content is None else str(content)])
    _widths(ws, [28, 120])
    with atomic_file(target) as tmp:
        wb.save(tmp)
    return target
