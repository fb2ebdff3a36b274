"""The health check as one self-contained HTML file: maps, charts, problem list, methods.

Nothing is fetched: the maps are SVG drawn by a small script embedded in the page from data
embedded in the page (unit outlines simplified to 2 m and rounded to whole metres in the
measurement CRS; streets from the bundle as the basemap). The page works offline, opens fast for
large cities because it draws units, not buildings, and needs no WebGL.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.errors import BundleError
from cityos.healthcheck.policy import Policy
from cityos.healthcheck.results import as_number, read_results
from cityos.outputs import atomic_file
from cityos.report.excel import LEVEL_SHEETS

__all__ = ["BASE_CSS", "write_html"]

SIMPLIFY_M = 2.0
TEXT = {
    "zh": {"title": "城市体检报告", "score": "体检概览", "map": "指标地图", "problems": "问题清单",
           "cc": "完整社区：缺失设施", "methods": "方法与数据", "level": "层级", "indicator": "指标",
           "unit": "单元", "value": "数值", "target": "目标", "status": "状态", "unconfirmed": "阈值未确认",
           "ranking": "单元排名", "locate": "定位", "missing": "缺失项", "change": "年度变化", "dist": "数值分布",
           "improved": "改善", "worsened": "恶化", "unchanged": "不变", "priorities": "城市更新优先级",
           "rank": "排名", "why": "主要原因", "priority_score": "优先级得分", "dimension": "维度",
           "cause": "原因", "pass": "达标", "fail": "不达标", "no_data": "无数据", "no_target": "无目标值",
           "generated": "生成单元", "nodata_legend": "无数据", "warning": "提示", "fails": "不达标项",
           "popwarn": "人口估算提示", "city": "城区", "subdistrict": "街道", "community": "社区",
           "m_systems": "体检体系", "m_asof": "数据截至", "m_crs": "坐标系", "m_population": "人口方法",
           "m_units": "体检单元", "m_distances": "距离", "m_sources": "数据来源", "m_credits": "版权",
           "m_policy": "政策参数", "m_states": "三种状态：达标、不达标、无数据（未测量，附原因）；缺失数据从不计为不达标。"},
    "en": {"title": "City health check report", "score": "Scorecard", "map": "Indicator map",
           "problems": "Problem list", "cc": "Complete communities: missing facilities",
           "methods": "Methods and data", "level": "Level", "indicator": "Indicator", "unit": "Unit",
           "value": "Value", "target": "Target", "status": "Status", "unconfirmed": "threshold unconfirmed",
           "ranking": "Ranking of units", "locate": "locate", "missing": "Missing items", "change": "Year-over-year",
           "dist": "Distribution", "improved": "improved", "worsened": "worsened", "unchanged": "unchanged",
           "priorities": "Renewal priorities", "rank": "Rank", "why": "What drives the score",
           "priority_score": "Priority score", "dimension": "Dimension", "cause": "Cause", "pass": "pass",
           "fail": "fail", "no_data": "no data", "no_target": "no target", "generated": "generated unit",
           "nodata_legend": "no data", "warning": "Warning", "fails": "failing",
           "popwarn": "Population estimate warnings", "city": "city", "subdistrict": "subdistrict",
           "community": "community", "m_systems": "Systems", "m_asof": "As of", "m_crs": "CRS",
           "m_population": "Population", "m_units": "Units", "m_distances": "Distances",
           "m_sources": "Sources", "m_credits": "Credits", "m_policy": "Policy numbers",
           "m_states": "Three states: met (pass), not met (fail), unmeasured (no data, with the reason); missing data is never a failure."},
}  # fmt: skip


STATUS_CODES = {"pass": 0, "fail": 1, "no_data": 2, "no_target": 3}
#: rows of the problem list shown in the page (the CSV has them all)
MAX_PROBLEMS = 2000


def _grid(
    ind: pd.DataFrame, order: dict[str, list[str]], policy: Policy, *, with_status: bool
) -> dict[str, Any]:
    """{level: {indicator: {"v": [value per unit], "s": [status code per unit]}}}, values
    rounded for people by the indicator's unit."""
    out: dict[str, Any] = {}
    units_of = ind.drop_duplicates("indicator_id").set_index("indicator_id")["unit"].astype(str)
    for lv, ids in order.items():
        sub = ind[ind["level"] == lv]
        val = sub.pivot_table(
            index="indicator_id", columns="unit_id", values="value", aggfunc="first", dropna=False
        )
        val = val.reindex(columns=ids)
        st = None
        if with_status:
            codes = sub.assign(code=sub["status"].map(STATUS_CODES).fillna(2))
            st = codes.pivot_table(
                index="indicator_id", columns="unit_id", values="code", aggfunc="first"
            ).reindex(columns=ids)
        out[lv] = {
            iid: {"v": [policy.for_people(v, units_of.get(iid, "")) for v in val.loc[iid].to_numpy()],
                  **({"s": [int(c) if c == c else 2 for c in st.loc[iid].to_numpy()]} if st is not None and iid in st.index else {})}
            for iid in val.index
        }  # fmt: skip
    return out


def _with_priority(values: dict[str, Any], priorities: dict[str, Any] | None) -> dict[str, Any]:
    if priorities:
        for lv, grid in priorities["levels"].items():
            values.setdefault(lv, {})[PRIORITY_ID] = {"v": grid["v"], "s": [3] * len(grid["v"])}
    return values


def _num(value: Any) -> float | None:
    """A JSON-safe number (None for missing), rounded to whole units (priority scores)."""
    f = as_number(value)
    return None if f is None else round(f)


def _coords(geom: shapely.Geometry) -> list[list[list[float]]]:
    """Rings of a (multi)polygon as lists of [x, y] in whole metres."""
    rings = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.is_empty:
            continue
        for ring in [poly.exterior, *poly.interiors]:
            rings.append(np.round(np.asarray(ring.coords)[:, :2]).astype(int).tolist())
    return rings


def _streets(results: Path, crs: str) -> list[list[list[int]]]:
    """The basemap kept in the results folder (``streets.parquet``), simplified, in whole metres."""
    file = results / "streets.parquet"
    if not file.is_file():
        return []
    major = gpd.read_parquet(file).to_crs(crs)
    lines = shapely.simplify(major.geometry.to_numpy(), SIMPLIFY_M * 2)
    return [np.round(shapely.get_coordinates(g)).astype(int).tolist() for g in lines]


def _payload(results: Path, compare: Path | None) -> dict[str, Any]:
    saved = read_results(results, also=["units.gpkg"])
    ind, summary = saved.indicators, saved.summary
    policy = Policy.from_record(summary.get("policy"))
    crs = summary.get("crs") or "EPSG:3857"
    units: dict[str, list[dict[str, Any]]] = {}
    for level in LEVEL_SHEETS:
        layer = gpd.read_file(results / "units.gpkg", layer=level).to_crs(crs)
        geoms = shapely.simplify(layer.geometry.to_numpy(), SIMPLIFY_M)
        units[level] = [{"id": str(u), "name": str(n), "gen": bool(g), "rings": _coords(geom)}
                        for u, n, g, geom in zip(layer["unit_id"], layer["name"], layer["generated"], geoms, strict=True)]  # fmt: skip
    meta = (
        ind.drop_duplicates("indicator_id")
        .set_index("indicator_id")[["name_zh", "name_en", "unit", "confirmed", "system"]]
        .assign(
            target=ind.groupby("indicator_id")["target"].first(),
            source=ind.groupby("indicator_id")["target_source"].first(),
            direction=ind.groupby("indicator_id")["direction"].first()
            if "direction" in ind
            else "higher",
            dimension=ind.groupby("indicator_id")["dimension"].first(),
            pop=ind.assign(w=ind["warning"].fillna("").astype(str) != "")
            .groupby("indicator_id")["w"]
            .any(),
        )
    )
    meta["dimension_en"] = meta["dimension"].map(lambda d: policy.dimensions_en.get(str(d), str(d)))
    meta["dp"] = meta["unit"].map(lambda u: policy.decimals_for(str(u)))
    meta["tol"] = meta["unit"].map(lambda u: policy.tolerance_for(str(u)))
    # values per level and indicator as arrays aligned with the units (compact for big cities)
    order = {lv: [u["id"] for u in units[lv]] for lv in units}
    values = _grid(ind, order, policy, with_status=True)
    old = (
        _grid(read_results(compare).indicators, order, policy, with_status=False)
        if compare
        else None
    )
    warn: dict[str, dict[int, str]] = {
        lv: {} for lv in order
    }  # level → {unit index: population warning}
    flagged = ind[ind["warning"].fillna("").astype(str) != ""].drop_duplicates(["level", "unit_id"])
    for lv, uid, text in zip(
        flagged["level"], flagged["unit_id"].astype(str), flagged["warning"], strict=True
    ):
        if lv in order and uid in order[lv]:
            warn[lv][order[lv].index(uid)] = str(text)
    # the complete-community notes: community rows of the complete-set methods that name what
    # is missing or unmeasured (filtered as columns, not row by row: big cities have many rows)
    notes_of = ind[
        (ind["level"] == "community") & ind["method"].astype(str).str.startswith("complete set")
    ]
    text = notes_of["note"]
    keep = text.map(lambda n: isinstance(n, str) and ("missing: " in n or "unmeasured" in n))
    notes = dict(
        zip(notes_of.loc[keep, "unit_id"].astype(str), notes_of.loc[keep, "note"], strict=True)
    )
    rounded: dict[str, Any] = {
        c: [policy.for_people(v, str(u)) for v, u in zip(saved.problems[c], saved.problems["unit"], strict=True)]
        for c in ("value", "target")
    }  # fmt: skip
    problem_table = saved.problems.assign(**rounded).astype(object).fillna("")
    problems = (
        problem_table.drop(columns=["building_ids"], errors="ignore")
        .head(MAX_PROBLEMS)
        .to_dict("records")
    )
    priorities = _priorities(results / "priorities", order)
    if priorities:  # the score as one more indicator of the map
        meta.loc[PRIORITY_ID] = pd.Series(PRIORITY_META)
    return {
        "priorities": priorities,
        "units": units,
        "streets": _streets(results, crs),
        "warn": warn,
        "policy": {k: v for k, v in policy.record().items() if k != "dimensions"},
        "indicators": {
            k: {
                kk: (None if isinstance(vv, float) and math.isnan(vv) else vv)
                for kk, vv in v.items()
            }
            for k, v in meta.to_dict("index").items()
        },
        "levels": {
            lv: ([PRIORITY_ID] if priorities and lv in priorities["levels"] else [])
            + sorted(ind.loc[ind["level"] == lv, "indicator_id"].unique().tolist())
            for lv in LEVEL_SHEETS
        },
        "values": _with_priority(values, priorities),
        "old": old,
        "missing": notes,
        "problems": problems,
        "problems_total": len(problem_table),
        "summary": summary,
        "counts": ind.groupby(["level", "status"]).size().unstack(fill_value=0).to_dict("index"),
    }


PRIORITY_ID = "renewal_priority"
PRIORITY_META: dict[str, Any] = {"name_zh": "城市更新优先级得分", "name_en": "Renewal priority score",
                 "unit": "score", "confirmed": False, "system": "renew", "target": np.nan,
                 "source": "cityos renew: Σ weight × severity × residents affected",
                 "direction": "lower", "dimension": "城市更新", "dimension_en": "Urban renewal",
                 "dp": 0, "tol": 0.5, "pop": False}  # fmt: skip
#: rows of the priorities table shown per level (priorities.csv has them all)
MAX_PRIORITIES = 30


def _priorities(results: Path, order: dict[str, list[str]]) -> dict[str, Any] | None:
    """The renewal priorities of ``cityos renew`` (priorities.csv) when the folder has them: the
    score as one more map layer per scored level, and the top units with their explanation."""
    file = results / "priorities.csv"
    if not file.is_file():
        return None
    table = pd.read_csv(file, encoding="utf-8-sig", dtype={"unit_id": str})
    out: dict[str, Any] = {"levels": {}, "top": {}}
    for lv, rows in table.groupby("level", sort=False):
        if lv not in order:
            continue
        by_id = rows.set_index("unit_id")
        ids = order[str(lv)]
        out["levels"][lv] = {
            "v": [_num(by_id["score"].get(u)) for u in ids],
            "rank": [int(r) if r == r else None for r in by_id["rank"].reindex(ids)],
            "why": [str(w) if isinstance(w, str) else "" for w in by_id["explanation"].reindex(ids)],
            "why_en": [str(w) if isinstance(w, str) else "" for w in by_id["explanation_en"].reindex(ids)],
        }  # fmt: skip
        top = rows[rows["score"] > 0].head(MAX_PRIORITIES)
        out["top"][lv] = top[["rank", "unit_id", "unit_name", "score", "explanation", "explanation_en"]].astype(object).fillna("").to_dict("records")  # fmt: skip
    return out


def write_html(
    results: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    lang: str | None = None,
    compare: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the self-contained HTML report of a results folder (optionally against last year's).

    ``lang`` is ``zh`` or ``en``; by default Chinese when the unit names are Chinese.
    """
    data = _payload(Path(results), Path(compare) if compare else None)
    if lang is None:
        names = " ".join(u["name"] for units in data["units"].values() for u in units[:50])
        lang = "zh" if re.search(r"[\u4e00-\u9fff]", names) else "en"
    if lang not in TEXT:
        raise BundleError(f"language {lang!r}: use zh or en")
    t = TEXT[lang]
    doc = _TEMPLATE.replace("__CSS__", BASE_CSS).replace("__TITLE__", html.escape(t["title"]))
    doc = doc.replace("__LANG__", lang)
    doc = doc.replace("__TEXT__", json.dumps(t, ensure_ascii=False))
    doc = doc.replace(
        "__DATA__", json.dumps(data, ensure_ascii=False, default=str).replace("</", "<\\/")
    )
    target = Path(out)
    with atomic_file(target) as tmp:
        tmp.write_text(doc, "utf-8")
    return target


#: The style every cityos page starts with (this report, the comparison of cities).
BASE_CSS = r"""body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;color:#222}
header{background:#234;color:#fff;padding:12px 20px}main{padding:12px 20px;max-width:1300px}
h2{border-bottom:2px solid #234;padding-bottom:4px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#eef}
"""

_TEMPLATE = r"""<!DOCTYPE html>
<html lang="__LANG__"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
__CSS__#mapwrap{display:flex;gap:16px;flex-wrap:wrap}#map{width:760px;height:560px;border:1px solid #999;background:#f7f7f4;cursor:grab}
#side{flex:1;min-width:320px}#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #555;padding:4px 8px;font-size:12px;display:none}
.unit{stroke:#333;stroke-width:1;vector-effect:non-scaling-stroke}.unit:hover{stroke:#e00;stroke-width:2}
.street{fill:none;stroke:#b8b8b8;stroke-width:1;vector-effect:non-scaling-stroke}
.fail{color:#b00}.pass{color:#070}.warn{color:#a50}.badge{background:#fc0;padding:0 4px;border-radius:3px;font-size:11px}
</style></head><body>
<header><h1 id="title">__TITLE__</h1><div id="sub"></div></header>
<main>
<h2 data-t="score"></h2><div id="score" style="display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start"></div>
<h2 data-t="map"></h2>
<div><label><span data-t="level"></span> <select id="level"></select></label>
<label><span data-t="indicator"></span> <select id="indicator"></select></label></div>
<div id="mapwrap"><svg id="map" xmlns="http://www.w3.org/2000/svg"><g id="view"><g id="streets"></g><g id="units"></g></g></svg>
<div id="side"><div id="info"></div><label id="chg"><input type="checkbox" id="showchange"> <span data-t="change"></span></label>
<h3 data-t="dist"></h3><svg id="hist" width="470" height="110"></svg>
<h3 data-t="ranking"></h3><svg id="chart" width="470" height="300"></svg></div></div>
<div id="legend"></div>
<div id="prio"><h2 data-t="priorities"></h2><div id="priorities"></div></div>
<h2 data-t="problems"></h2><div id="problems"></div>
<h2 data-t="cc"></h2><div id="cc"></div>
<h2 data-t="popwarn" id="popwarn-h"></h2><div id="popwarn"></div>
<h2 data-t="methods"></h2><div id="methods"></div>
</main><div id="tip"></div>
<script>
"use strict";
const T = __TEXT__;
const D = __DATA__;
const NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = T[e.dataset.t]; });
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const S = D.summary;
$("sub").textContent = `${(S.systems || []).map((s) => s.id).join(" + ")} · ${S.as_of || ""} · ${S.crs}`;
// scorecard
const ZH = document.documentElement.lang === "zh";
const heads = `<th>${T.pass}</th><th>${T.fail}</th><th>${T.no_data}</th><th>${T.no_target}</th>`;
let sc = `<table><tr><th>${T.level}</th>${heads}</tr>`;
for (const [lv, c] of Object.entries(D.counts)) sc += `<tr><td>${esc(T[lv] || lv)}</td><td class="pass">${c.pass || 0}</td><td class="fail">${c.fail || 0}</td><td>${c.no_data || 0}</td><td>${c.no_target || 0}</td></tr>`;
sc += "</table>";
// by dimension, and the units failing most indicators
const byDim = {}, fails = {};
for (const [lv, inds] of Object.entries(D.values)) for (const [id, g] of Object.entries(inds)) {
  if (id === "renewal_priority") continue;
  const m = D.indicators[id] || {};
  const dim = (ZH ? m.dimension : m.dimension_en) || "—";
  byDim[dim] = byDim[dim] || [0, 0, 0, 0];
  (g.s || []).forEach((c, i) => { byDim[dim][c]++; if (c === 1) { const k = `${T[lv] || lv}|${D.units[lv][i].name}`; fails[k] = (fails[k] || 0) + 1; } });
}
sc += `<table><tr><th>${T.dimension}</th>${heads}</tr>` + Object.entries(byDim).map(([d, c]) => `<tr><td>${esc(d)}</td><td class="pass">${c[0]}</td><td class="fail">${c[1]}</td><td>${c[2]}</td><td>${c[3]}</td></tr>`).join("") + "</table>";
const worst = Object.entries(fails).sort((a, b) => b[1] - a[1]).slice(0, 10);
sc += `<table id="worst"><tr><th>${T.unit}</th><th>${T.fails}</th></tr>` + worst.map(([k, n]) => `<tr><td>${esc(k.replace("|", " · "))}</td><td class="fail">${n}</td></tr>`).join("") + "</table>";
$("score").innerHTML = sc;
// map frame
let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
for (const u of D.units.city) for (const r of u.rings) for (const [x, y] of r) { minx = Math.min(minx, x); maxx = Math.max(maxx, x); miny = Math.min(miny, y); maxy = Math.max(maxy, y); }
const pad = 0.03 * Math.max(maxx - minx, maxy - miny, 1);
let vb = [minx - pad, -(maxy + pad), maxx - minx + 2 * pad, maxy - miny + 2 * pad];
const svg = $("map");
const setVB = () => svg.setAttribute("viewBox", vb.join(" "));
setVB();
const path = (rings) => rings.map((r) => "M" + r.map(([x, y]) => `${x},${-y}`).join("L") + "Z").join("");
$("streets").innerHTML = `<path class="street" d="${D.streets.map((l) => "M" + l.map(([x, y]) => `${x},${-y}`).join("L")).join("")}"/>`;
// pan and zoom by the viewBox
let drag = null;
svg.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY, vb[0], vb[1]]; });
window.addEventListener("mouseup", () => { drag = null; });
svg.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const k = vb[2] / svg.clientWidth;
  vb[0] = drag[2] - (e.clientX - drag[0]) * k; vb[1] = drag[3] - (e.clientY - drag[1]) * k; setVB();
});
svg.addEventListener("wheel", (e) => {
  e.preventDefault();
  const f = e.deltaY > 0 ? 1.2 : 1 / 1.2, r = svg.getBoundingClientRect();
  const px = vb[0] + (e.clientX - r.left) / r.width * vb[2], py = vb[1] + (e.clientY - r.top) / r.height * vb[3];
  vb = [px - (px - vb[0]) * f, py - (py - vb[1]) * f, vb[2] * f, vb[3] * f]; setVB();
}, {passive: false});
// colours: a sequential scale from the indicator's range, grey for no data
const ramp = (t) => `hsl(212,65%,${Math.round(90 - 58 * t)}%)`;  // light → dark: low → high
const name = (id) => (ZH ? D.indicators[id].name_zh : D.indicators[id].name_en);
const fmt = (v, id) => (v === null || v === undefined ? "—" : Number(v).toLocaleString(ZH ? "zh-CN" : "en", {minimumFractionDigits: (D.indicators[id] || {}).dp ?? 2, maximumFractionDigits: (D.indicators[id] || {}).dp ?? 2}));
const lvSel = $("level"), indSel = $("indicator");
const STATUS = ["pass", "fail", "no_data", "no_target"];
function cell(lv, id, i) {
  const g = (D.values[lv] || {})[id];
  return g ? [g.v[i], STATUS[g.s ? g.s[i] : 2]] : [null, "no_data"];
}
const oldValue = (lv, id, i) => { const g = D.old && (D.old[lv] || {})[id]; return g ? g.v[i] : undefined; };
for (const lv of Object.keys(D.units)) lvSel.add(new Option(T[lv] || lv, lv));
lvSel.value = "community";
function fillIndicators() {
  const keep = indSel.value; indSel.innerHTML = "";
  for (const id of D.levels[lvSel.value]) indSel.add(new Option(name(id), id));
  if (D.levels[lvSel.value].includes(keep)) indSel.value = keep;
  else { const firstWithData = D.levels[lvSel.value].find((id) => D.units[lvSel.value].some((u, i) => cell(lvSel.value, id, i)[0] !== null)); if (firstWithData) indSel.value = firstWithData; }
}
const tip = $("tip");
function draw() {
  const lv = lvSel.value, id = indSel.value, meta = D.indicators[id];
  const vals = D.units[lv].map((u, i) => cell(lv, id, i));
  const nums = vals.map((v) => v[0]).filter((v) => v !== null);
  const lo = Math.min(...nums), hi = Math.max(...nums);
  let g = "";
  const showChange = D.old && $("showchange").checked;
  D.units[lv].forEach((u, i) => {
    const v = vals[i][0];
    let fill = v === null ? "#ddd" : ramp(hi > lo ? (v - lo) / (hi - lo) : 0.5);
    if (showChange) {
      const o = oldValue(lv, id, i);
      const d = (v === null || o === null || o === undefined) ? null : (meta.direction === "lower" ? o - v : v - o);
      fill = d === null ? "#ddd" : d > meta.tol ? "#3a3" : d < -meta.tol ? "#c33" : "#bbb";
    }
    g += `<path class="unit" data-i="${i}" fill="${fill}" fill-opacity="0.75" d="${path(u.rings)}"/>`;
  });
  $("units").innerHTML = g;
  $("units").querySelectorAll(".unit").forEach((p) => {
    p.addEventListener("mousemove", (e) => {
      const u = D.units[lv][+p.dataset.i], v = vals[+p.dataset.i];
      const old = oldValue(lv, id, +p.dataset.i);
      tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 12 + "px";
      const w = meta.pop && (D.warn[lv] || {})[+p.dataset.i];
      tip.innerHTML = `<b>${esc(u.name)}</b>${u.gen ? ` (${T.generated})` : ""}<br>${T.value}: ${fmt(v[0], id)} ${esc(meta.unit)}<br>${T.target}: ${fmt(meta.target, id)}<br>${T.status}: ${T[v[1]]}` + (old !== undefined ? `<br>${T.change}: ${fmt(old, id)} → ${fmt(v[0], id)}` : "") + (w ? `<br><span class="warn">⚠ ${esc(w)}</span>` : "");
      if (id === "renewal_priority") { const P = D.priorities.levels[lv], k = +p.dataset.i; tip.innerHTML = `<b>${esc(u.name)}</b><br>${T.rank}: ${P.rank[k] ?? "—"} · ${T.priority_score}: ${fmt(v[0], id)}<br>${esc(ZH ? P.why[k] : P.why_en[k])}`; }
    });
    p.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  });
  const nwarn = meta.pop ? Object.keys(D.warn[lv] || {}).length : 0;
  $("info").innerHTML = `<b>${esc(name(id))}</b> (${esc(meta.unit)})<br>${T.target}: ${fmt(meta.target, id)} ${esc(meta.source || "")}` + (meta.confirmed ? "" : ` <span class="badge">${T.unconfirmed}</span>`) + (nwarn ? `<br><span class="warn" id="popwarn-note">⚠ ${T.popwarn}: ${nwarn} ${T.unit}</span>` : "");
  $("legend").textContent = nums.length ? `${fmt(lo, id)} … ${fmt(hi, id)} ${meta.unit}` : T.nodata_legend;
  if (D.old) {  // the change of this indicator over its units
    const t = {improved: 0, worsened: 0, unchanged: 0};
    D.units[lv].forEach((u, i) => {
      const v = vals[i][0], o = oldValue(lv, id, i);
      if (v === null || o === null || o === undefined) return;
      const d = meta.direction === "lower" ? o - v : v - o;
      t[d > meta.tol ? "improved" : d < -meta.tol ? "worsened" : "unchanged"]++;
    });
    $("info").innerHTML += `<br>${T.change}: ${T.improved} ${t.improved} · ${T.worsened} ${t.worsened} · ${T.unchanged} ${t.unchanged}`;
  }
  // distribution: 20 bins between the lowest and the highest value
  const bins = new Array(20).fill(0);
  for (const v of nums) bins[Math.min(19, Math.floor(hi > lo ? (v - lo) / (hi - lo) * 20 : 0))]++;
  const bmax = Math.max(...bins, 1);
  $("hist").innerHTML = bins.map((b, k) => `<rect x="${10 + k * 22}" y="${95 - 85 * b / bmax}" width="20" height="${85 * b / bmax}" fill="#468"/>`).join("") + `<text x="10" y="108" font-size="10">${nums.length ? fmt(lo, id) : ""}</text><text x="450" y="108" font-size="10" text-anchor="end">${nums.length ? fmt(hi, id) : ""}</text>`;
  // ranking chart
  const ranked = D.units[lv].map((u, i) => [u.name, vals[i][0]]).filter((r) => r[1] !== null).sort((a, b) => b[1] - a[1]).slice(0, 15);
  const top = Math.max(...ranked.map((r) => r[1]), 1e-9);
  $("chart").innerHTML = ranked.map((r, k) => `<rect x="150" y="${k * 19 + 2}" height="15" width="${Math.max(1, 250 * r[1] / top)}" fill="#468"/><text x="146" y="${k * 19 + 14}" font-size="11" text-anchor="end">${esc(String(r[0]).slice(0, 22))}</text><text x="${154 + 250 * r[1] / top}" y="${k * 19 + 14}" font-size="10">${fmt(r[1], id)}</text>`).join("");
}
lvSel.addEventListener("change", () => { fillIndicators(); draw(); });
indSel.addEventListener("change", draw);
$("showchange").addEventListener("change", draw);
if (!D.old) $("chg").style.display = "none";
fillIndicators(); draw();
// problem list with locate buttons
function locate(level, unitId, indicator) {
  lvSel.value = level; fillIndicators(); if (indicator) indSel.value = indicator; draw();
  const u = D.units[level].find((x) => x.id === unitId); if (!u) return;
  const xs = u.rings.flat().map((p) => p[0]), ys = u.rings.flat().map((p) => p[1]);
  const w = Math.max(...xs) - Math.min(...xs), h = Math.max(...ys) - Math.min(...ys), m = Math.max(w, h) * 0.6 + 50;
  vb = [Math.min(...xs) - m, -Math.max(...ys) - m, w + 2 * m, h + 2 * m]; setVB();
  svg.scrollIntoView();
}
let pr = `<table><tr><th>${T.level}</th><th>${T.unit}</th><th>${T.indicator}</th><th>${T.value}</th><th>${T.target}</th><th></th><th>${T.cause}</th><th>${T.warning}</th></tr>`;
D.problems.slice(0, 2000).forEach((p, k) => { pr += `<tr><td>${esc(T[p.level] || p.level)}</td><td>${esc(p.unit_name)}</td><td>${esc(ZH ? p.name_zh : p.name_en)}</td><td>${esc(fmt(p.value, p.indicator_id))} ${esc(p.unit)}</td><td>${esc(fmt(p.target, p.indicator_id))}</td><td><button data-k="${k}">${T.locate}</button></td><td>${esc(ZH ? p.cause_zh : p.cause)}</td><td class="warn">${esc(p.warning)}</td></tr>`; });
$("problems").innerHTML = pr + "</table>" + (D.problems_total > D.problems.length ? `<p>${D.problems.length} / ${D.problems_total} (problems.csv)</p>` : "");
$("problems").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => { const p = D.problems[+b.dataset.k]; locate(p.level, String(p.unit_id)); }));
if (D.priorities) {
  let ph = "";
  for (const [lv, rows] of Object.entries(D.priorities.top)) {
    ph += `<h3>${esc(T[lv] || lv)}</h3><table class="prio"><tr><th>${T.rank}</th><th>${T.unit}</th><th>${T.priority_score}</th><th></th><th>${T.why}</th></tr>`;
    rows.forEach((r, k) => { ph += `<tr><td>${r.rank}</td><td>${esc(r.unit_name)}</td><td>${Math.round(r.score).toLocaleString()}</td><td><button data-lv="${esc(lv)}" data-id="${esc(r.unit_id)}">${T.locate}</button></td><td>${esc(ZH ? r.explanation : r.explanation_en)}</td></tr>`; });
    ph += "</table>";
  }
  $("priorities").innerHTML = ph;
  $("priorities").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => locate(b.dataset.lv, b.dataset.id, "renewal_priority")));
} else $("prio").style.display = "none";
let cc = `<table><tr><th>${T.unit}</th><th>${T.missing}</th></tr>`;
for (const [u, note] of Object.entries(D.missing)) cc += `<tr><td>${esc(u)}</td><td>${esc(note.replace("missing: ", ""))}</td></tr>`;
$("cc").innerHTML = cc + "</table>";
const pop = Object.fromEntries(Object.entries(S.population || {}).filter(([k]) => k !== "implausible" && k !== "unallocated"));
$("methods").innerHTML = `<p>${T.m_states}</p><table>${[[T.m_systems, (S.systems || []).map((s) => `${s.id} ${s.version}`).join("; ")], [T.m_asof, S.as_of], [T.m_crs, S.crs], [T.m_population, JSON.stringify(pop)], [T.m_units, JSON.stringify(S.units)], [T.m_distances, JSON.stringify(S.distances)], [T.m_policy, JSON.stringify(D.policy)], [T.m_sources, (S.sources || []).map((s) => `${s.kind}: ${s.path} (${(s.sha256 || "").slice(0, 12)} ${s.replication_timestamp || s.newest_object || ""})`).join("; ")], [T.m_credits, (S.attribution || []).join("; ")]].map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("")}</table>`;
const odd = (S.population || {}).implausible || [];
$("popwarn").innerHTML = odd.length ? `<ul>${odd.slice(0, 200).map((o) => `<li>${esc(ZH ? o.message_zh : o.message)}</li>`).join("")}</ul>` + (odd.length > 200 ? `<p>${odd.length} (summary.json)</p>` : "") : "";
if (!odd.length) $("popwarn-h").style.display = "none";
</script></body></html>
"""
