"""Survey templates: for a register, an Excel workbook a survey team fills in — Chinese headers
with the column names in a second row, drop-downs for flags and codes, number formats and
ranges, rows pre-filled with the bundle's buildings or units (with reference columns the team
reads but the check ignores), a sheet explaining every column and the indicators it feeds — and
a CSV twin for online survey tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from cityos.bundle import Bundle
from cityos.errors import InputError
from cityos.registers.schema import Column, RegisterSchema
from cityos.units import assign_to_units, bundle_units

__all__ = [
    "DATA_SHEET",
    "FIRST_ROW",
    "GUIDE_SHEET",
    "REF_PREFIX",
    "prefill",
    "write_template",
]

#: the sheet the team fills, the sheet that explains it, the first row of data (1-based)
DATA_SHEET, GUIDE_SHEET, FIRST_ROW = "登记表", "填表说明", 3
#: reference columns (read-only for the team, ignored by the check) start with this
REF_PREFIX = "ref_"
_FLAG_VALUES = ("是", "否")
_USE_ZH = {"residential": "住宅", "non_residential": "非住宅", "unknown": "未知"}


def prefill(
    schema: RegisterSchema, bundle: Bundle, admin_levels: dict[int, str] | None = None,
    within: tuple[str, str] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The rows a template starts with: the key, the reference columns (``ref_…``: name, use,
    storeys, floor area and community of a building; name and level of a unit) and every
    schema column blank — the units exactly as the health check forms them (the bundle's, OSM
    admin, or its generated grid). ``within`` (level, unit id): only the buildings or units
    lying in that unit (a form per community or subdistrict for distribution).

    Raises
    ------
    InputError
        ``within`` names a level or unit the health check does not have.
    """
    blank = {c.name: pd.Series([""] * 0, dtype=object) for c in schema.columns}
    if schema.rows == "none":
        return pd.DataFrame(blank)
    unit_set = bundle_units(bundle, admin_levels)
    levels = unit_set.levels
    if within is not None and (
        within[0] not in levels or within[1] not in set(levels[within[0]]["unit_id"].astype(str))
    ):
        known = (
            ", ".join(sorted(levels[within[0]]["unit_id"].astype(str))[:10])
            if within[0] in levels
            else ""
        )
        raise InputError(f"--units {within[0]}={within[1]}: no such unit"
                         + (f"; the {within[0]} units are {known}…" if known else f"; levels are {', '.join(levels)}"))  # fmt: skip
    if schema.rows in ("buildings", "residential_buildings"):
        b = bundle.buildings.to_crs(bundle.crs)
        if schema.rows == "residential_buildings":
            b = b[b["use"].isin(["residential", "unknown"])]
        where = gpd.GeoSeries(b.geometry.representative_point().to_numpy(), crs=bundle.crs)
        owner = assign_to_units(where, unit_set)
        rows = pd.DataFrame({
            schema.key: b["building_id"].astype(str).to_numpy(),
            "ref_name": b["name"].fillna("").astype(str).to_numpy(),
            "ref_use": b["use"].map(_USE_ZH).fillna("").to_numpy(),
            "ref_levels": b["levels"].to_numpy(),
            "ref_floor_area_m2": np.round(b["floor_area_m2"].to_numpy(dtype=float), 0),
            "ref_community": owner["community"].to_numpy(),
        })  # fmt: skip
        if within is not None:
            rows = rows[(owner[within[0]] == within[1]).to_numpy()]
    else:
        units = levels[schema.rows]
        if within is not None:
            point = gpd.GeoSeries(units.geometry.representative_point().to_numpy(), crs=units.crs)
            inside = assign_to_units(point, unit_set)
            units = units[(inside[within[0]] == within[1]).to_numpy()]
        rows = pd.DataFrame({
            schema.key: units["unit_id"].astype(str).to_numpy(),
            "ref_name": units["name"].fillna("").astype(str).to_numpy(),
            "ref_level": schema.rows,
        })  # fmt: skip
    for c in schema.columns:
        if c.name not in rows:
            rows[c.name] = ""
    refs = [c for c in rows.columns if c.startswith(REF_PREFIX)]
    order = [schema.key, *refs, *[c.name for c in schema.columns if c.name != schema.key]]
    return rows[order].sort_values(schema.key, kind="stable").reset_index(drop=True)


_REF_ZH = {"ref_name": "名称", "ref_use": "用途", "ref_levels": "层数", "ref_floor_area_m2": "建筑面积（m²）",
           "ref_community": "所在社区单元", "ref_level": "层级"}  # fmt: skip


def headers(schema: RegisterSchema, columns: Sequence[str]) -> list[str]:
    """The Chinese header of each column (``〔参考〕名称`` for a reference column)."""
    out = []
    for name in columns:
        if name.startswith(REF_PREFIX):
            out.append(f"〔参考〕{_REF_ZH.get(name, name[len(REF_PREFIX) :])}")
        else:
            out.append(schema.column(name).header)
    return out


def _kind(c: Column) -> str:
    return {"text": "文本", "flag": "是/否", "number": "数值", "integer": "整数", "code": "代码",
            "date": "日期（YYYY-MM-DD）"}[c.type]  # fmt: skip


def guide(schema: RegisterSchema) -> pd.DataFrame:
    """One row per column: headers, type, unit, allowed values, whether required, range, the
    indicators it feeds."""
    return pd.DataFrame([{
        "列名 column": c.name, "表头": c.header, "English": c.en, "类型 type": _kind(c),
        "单位 unit": c.unit, "可选值 allowed": "、".join(_FLAG_VALUES if c.type == "flag" else c.allowed),
        "必填 required": "是" if c.required or c.name == schema.key else "否",
        "范围 range": "" if c.min is None and c.max is None else f"{'' if c.min is None else f'{c.min:g}'} – {'' if c.max is None else f'{c.max:g}'}",
        "用于指标 indicators": "；".join(f"{f.system} {f.no or ''} {f.name_zh}".replace("  ", " ")
                                     for f in schema.feeds.get(c.name, ())),
        "说明 note": c.note,
    } for c in schema.columns])  # fmt: skip


def write_template(schema: RegisterSchema, rows: pd.DataFrame, xlsx: Path, csv: Path) -> None:
    """Write the workbook (data sheet with two header rows, drop-downs, formats; the guide
    sheet) to ``xlsx`` and the CSV twin (Chinese headers, UTF-8 with BOM) to ``csv``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from cityos.outputs import atomic_file

    columns = list(rows.columns)
    zh = headers(schema, columns)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = DATA_SHEET
    ws.append(zh)
    ws.append(columns)
    for values in rows.itertuples(index=False):
        ws.append(
            [None if (isinstance(v, float) and np.isnan(v)) or v == "" else v for v in values]
        )
    head, ref = PatternFill("solid", fgColor="DDEBF7"), PatternFill("solid", fgColor="EDEDED")
    last = FIRST_ROW + max(len(rows), 1) + 500  # room for rows the team adds
    for j, name in enumerate(columns, 1):
        letter = get_column_letter(j)
        top, sub = ws.cell(1, j), ws.cell(2, j)
        top.font, top.alignment = Font(bold=True), Alignment(wrap_text=True, vertical="top")
        top.fill = ref if name.startswith(REF_PREFIX) else head
        sub.font = Font(size=8, color="808080")
        ws.column_dimensions[letter].width = max(12, min(40, len(zh[j - 1]) * 2))
        if name.startswith(REF_PREFIX):
            continue
        c = schema.column(name)
        area = f"{letter}{FIRST_ROW}:{letter}{last}"
        rule: DataValidation | None = None
        if c.type in ("flag", "code"):
            choices = _FLAG_VALUES if c.type == "flag" else c.allowed
            rule = DataValidation(
                type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True
            )
            rule.error = f"请从下拉列表选择：{'、'.join(choices)}"
        elif c.type in ("number", "integer"):
            kind = "decimal" if c.type == "number" else "whole"
            low = -1e15 if c.min is None else c.min
            high = 1e15 if c.max is None else c.max
            rule = DataValidation(type=kind, operator="between", formula1=f"{low:g}",
                                  formula2=f"{high:g}", allow_blank=True)  # fmt: skip
            rule.error = f"请填写{'整数' if c.type == 'integer' else '数值'}" + (
                f"（{c.unit}）" if c.unit else "") + f"，范围 {low:g} – {high:g}"  # fmt: skip
            for row in ws.iter_rows(min_row=FIRST_ROW, max_row=last, min_col=j, max_col=j):
                row[0].number_format = "0" if c.type == "integer" else "0.00"
        elif c.type == "date":
            for row in ws.iter_rows(min_row=FIRST_ROW, max_row=last, min_col=j, max_col=j):
                row[0].number_format = "yyyy-mm-dd"
        if rule is not None:
            rule.showErrorMessage = True
            rule.errorTitle = c.header
            rule.add(area)
            ws.add_data_validation(rule)
    ws.freeze_panes = f"B{FIRST_ROW}"
    g = wb.create_sheet(GUIDE_SHEET)
    table = guide(schema)
    g.append([f"{schema.name_zh}（{schema.name}）", schema.name_en])
    g.append([schema.note])
    g.append([f"来源 source: {schema.source}"])
    g.append(["第 1 行为中文表头，第 2 行为列名（请勿修改）；〔参考〕列由 cityos 预填，仅供核对。"])
    g.append([])
    g.append(list(table.columns))
    for values in table.itertuples(index=False):
        g.append(list(values))
    for j in range(1, len(table.columns) + 1):
        g.cell(6, j).font = Font(bold=True)
        g.column_dimensions[get_column_letter(j)].width = 24
    with atomic_file(xlsx) as tmp:
        wb.save(tmp)
    twin = rows.copy()
    twin.columns = zh
    with atomic_file(csv) as tmp:
        twin.to_csv(tmp, index=False, encoding="utf-8-sig")
