"""The comparison of cities: one offline HTML page and an Excel workbook.

For every city-level indicator: the cities ranked (best first by the indicator's direction; ties
share a rank; a city that did not measure it is listed after the ranked ones with the reason,
never ranked as zero), a map of the cities coloured by their value (each city's ``city`` unit,
in a Lambert azimuthal equal-area projection centred on the cities), the distribution of the
city values, and within each city the spread of its community values (minimum, quartiles,
maximum). The page also lists every city's status, and each failed city's step and error.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from cityos.cities.combine import cities_table
from cityos.cities.table import City
from cityos.cities.task import Settings
from cityos.healthcheck.policy import Policy, load_policy
from cityos.outputs import atomic_file
from cityos.report.html import BASE_CSS

__all__ = ["city_values", "ranking", "write_comparison"]

HTML_NAME = "comparison.html"
XLSX_NAME = "comparison.xlsx"
#: points per city outline on the map at most (the outline simplified until it fits)
MAX_POINTS = 400


def city_values(table: pd.DataFrame) -> pd.DataFrame:
    """The city-level rows of ``all_indicators``: one per city × indicator."""
    cols = ["city_id", "city_name", "adcode", "indicator_id", "name_zh", "name_en", "unit",
            "value", "status", "target", "direction", "system", "note", "method"]  # fmt: skip
    if table.empty:
        return pd.DataFrame(columns=cols)
    rows = table[table["level"] == "city"].drop_duplicates(["city_id", "indicator_id"])
    return rows[[c for c in cols if c in rows.columns]].reset_index(drop=True)


def ranking(values: pd.DataFrame) -> pd.DataFrame:
    """Cities ranked per indicator: rank 1 is the best value by the indicator's ``direction``
    (``lower`` is better for counts of problems); equal values share the lowest rank; cities
    without a value get no rank (``rank`` missing) and keep their ``note``."""
    if values.empty:
        return values.assign(rank=pd.Series(dtype="Int64"))
    parts = []
    for _, g in values.groupby("indicator_id", sort=True):
        lower = str(g["direction"].iloc[0]) == "lower"
        rank = g["value"].rank(method="min", ascending=lower)
        parts.append(g.assign(rank=rank.astype("Int64")))
    out = pd.concat(parts, ignore_index=True)
    out["has_value"] = out["value"].notna()
    out = out.sort_values(["indicator_id", "has_value", "rank", "city_id"],
                          ascending=[True, False, True, True], kind="stable")  # fmt: skip
    return out.drop(columns="has_value").reset_index(drop=True)


def _spread(table: pd.DataFrame) -> dict[str, dict[str, list[float] | None]]:
    """{indicator: {city_id: [min, q1, median, q3, max, n]}} of the community values."""
    out: dict[str, dict[str, list[float] | None]] = {}
    if table.empty:
        return out
    com = table[(table["level"] == "community") & table["value"].notna()]
    for (iid, cid), g in com.groupby(["indicator_id", "city_id"]):
        q = np.quantile(g["value"].to_numpy(float), [0, 0.25, 0.5, 0.75, 1])
        out.setdefault(str(iid), {})[str(cid)] = [*map(float, q), float(len(g))]
    return out


def _outlines(root: Path, cities: Sequence[City], ok: set[str]) -> dict[str, list[list[list[int]]]]:
    """Each finished city's ``city`` unit in one equal-area projection, in whole metres."""
    shapes = {}
    for c in cities:
        file = root / c.city_id / "results" / "units.gpkg"
        if c.city_id in ok and file.is_file():
            layer = gpd.read_file(file, layer="city").to_crs("EPSG:4326")
            shapes[c.city_id] = shapely.union_all(layer.geometry.to_numpy())
    if not shapes:
        return {}
    centre = shapely.centroid(shapely.union_all(list(shapes.values())))
    crs = f"+proj=laea +lat_0={centre.y:.4f} +lon_0={centre.x:.4f} +datum=WGS84 +units=m"
    geo = gpd.GeoSeries(list(shapes.values()), index=list(shapes), crs="EPSG:4326").to_crs(crs)
    out = {}
    for cid, geom in geo.items():
        size = max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1], 1.0)
        g = geom
        for k in (500, 200, 100, 50):
            g = shapely.simplify(geom, size / k)
            if shapely.get_num_coordinates(g) <= MAX_POINTS:
                break
        rings = []
        for poly in getattr(g, "geoms", [g]):
            if not poly.is_empty and poly.geom_type == "Polygon":
                rings.append(np.round(np.asarray(poly.exterior.coords)[:, :2]).astype(int).tolist())
        out[str(cid)] = rings
    return out


def _payload(root: Path, cities: Sequence[City], records: Sequence[dict[str, Any]],
             values: pd.DataFrame, spread: dict[str, dict[str, list[float] | None]],
             settings: Settings, policy: Policy) -> dict[str, Any]:  # fmt: skip
    ok = {r["city_id"] for r in records if r["status"] == "ok"}
    ids = [c.city_id for c in cities]
    meta: dict[str, Any] = {}
    grid: dict[str, Any] = {}
    for iid, g in values.groupby("indicator_id", sort=True):
        first = g.iloc[0]
        unit = str(first["unit"])
        meta[str(iid)] = {"zh": str(first["name_zh"]), "en": str(first["name_en"]), "unit": unit,
                          "dir": str(first["direction"]), "system": str(first["system"]),
                          "dp": policy.decimals_for(unit)}  # fmt: skip
        by = g.set_index("city_id")
        grid[str(iid)] = {
            "v": [policy.for_people(by["value"].get(c), unit) for c in ids],
            "s": [str(by["status"].get(c, "")) if c in by.index else "" for c in ids],
            "n": [str(by["note"].get(c) or "") if c in by.index else "" for c in ids],
        }
    head = [i for i in settings.headline if i in meta]
    order = head + sorted(set(meta) - set(head))
    status = [r["status"] for r in records]
    return {
        "cities": [
            {
                "id": c.city_id,
                "name": c.name,
                "adcode": c.adcode or "",
                "status": r["status"],
                "step": r.get("step") or "",
                "error": r.get("error") or "",
                "counts": r.get("counts") or {},
                "total_s": (r.get("durations_s") or {}).get("total"),
            }
            for c, r in zip(cities, records, strict=True)
        ],
        "outlines": _outlines(root, cities, ok),
        "indicators": meta,
        "order": order,
        "headline": head,
        "values": grid,
        "spread": spread,
        "summary": {
            "ok": status.count("ok"),
            "failed": status.count("failed"),
            "interrupted": status.count("interrupted"),
            "cities": len(records),
        },
    }


TEXT = {
    "zh": {"title": "城市体检：城市比较", "cities": "城市", "status": "状态", "ok": "完成", "failed": "失败",
           "interrupted": "中断", "indicator": "指标", "rank": "排名", "value": "数值", "map": "地图",
           "ranking": "城市排名", "dist": "城市数值分布", "spread": "各城市社区数值分布（最小、四分位、最大）",
           "no_data": "无数据", "pass": "达标", "fail": "不达标", "no_target": "无目标值", "step": "步骤",
           "error": "错误", "reason": "原因", "counts": "达标/不达标/无数据", "time": "用时 (s)",
           "better_low": "越低越好", "better_high": "越高越好", "headline": "主要指标"},
    "en": {"title": "City health check: comparison of cities", "cities": "Cities", "status": "Status",
           "ok": "done", "failed": "failed", "interrupted": "interrupted", "indicator": "Indicator",
           "rank": "Rank", "value": "Value", "map": "Map", "ranking": "Ranking of cities",
           "dist": "Distribution of city values", "spread": "Community values within each city (min, quartiles, max)",
           "no_data": "no data", "pass": "pass", "fail": "fail", "no_target": "no target", "step": "Step",
           "error": "Error", "reason": "Reason", "counts": "pass/fail/no data", "time": "Time (s)",
           "better_low": "lower is better", "better_high": "higher is better", "headline": "headline"},
}  # fmt: skip


def _lang(cities: Sequence[City], lang: str | None) -> str:
    if lang in TEXT:
        return str(lang)
    names = " ".join(c.name for c in cities)
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in names) else "en"


def write_comparison(
    root: Path, cities: Sequence[City], records: Sequence[dict[str, Any]], table: pd.DataFrame,
    settings: Settings,
) -> tuple[Path, Path]:  # fmt: skip
    """Write ``comparison.html`` and ``comparison.xlsx`` into the batch folder."""
    policy = load_policy()
    lang = _lang(cities, settings.lang)
    values, spread = city_values(table), _spread(table)
    data = _payload(root, cities, records, values, spread, settings, policy)
    t = TEXT[lang]
    doc = (
        _TEMPLATE.replace("__CSS__", BASE_CSS)
        .replace("__LANG__", lang).replace("__TITLE__", html.escape(t["title"]))
        .replace("__TEXT__", json.dumps(t, ensure_ascii=False))
        .replace("__DATA__", json.dumps(data, ensure_ascii=False, default=str).replace("</", "<\\/"))
    )  # fmt: skip
    with atomic_file(root / HTML_NAME) as tmp:
        tmp.write_text(doc, "utf-8")
    _workbook(root / XLSX_NAME, records, values, spread, settings)
    return root / HTML_NAME, root / XLSX_NAME


def _workbook(target: Path, records: Sequence[dict[str, Any]], values: pd.DataFrame,
              spread: dict[str, dict[str, list[float] | None]], settings: Settings) -> None:  # fmt: skip
    ranked = ranking(values)
    wide = (values.pivot_table(index=["city_id", "city_name"], columns="indicator_id", values="value",
                               aggfunc="first", dropna=False)
            .reset_index() if not values.empty else pd.DataFrame())  # fmt: skip
    quartiles = [
        {"indicator_id": iid, "city_id": cid, "min": q[0], "q1": q[1], "median": q[2], "q3": q[3],
         "max": q[4], "communities": int(q[5])}
        for iid, by in spread.items() for cid, q in by.items() if q is not None
    ]  # fmt: skip
    sheets = {
        "城市 cities": cities_table(records, settings.headline),
        "排名 ranking": ranked[["indicator_id", "name_zh", "name_en", "unit", "rank", "city_id",
                              "city_name", "adcode", "value", "status", "target", "note"]]
        if not ranked.empty else ranked,
        "城市指标 city values": wide,
        "社区分布 spread": pd.DataFrame(quartiles),
    }  # fmt: skip
    with atomic_file(target) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as xw:
        for name, frame in sheets.items():
            frame.to_excel(xw, sheet_name=name, index=False)


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="__LANG__"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
__CSS__#wrap{display:flex;gap:16px;flex-wrap:wrap}#map{width:620px;height:520px;border:1px solid #999;background:#f7f7f4}
.city{stroke:#333;stroke-width:1;vector-effect:non-scaling-stroke}.city:hover{stroke:#e00;stroke-width:2}
.failed{color:#b00}.nd{color:#777}#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #555;padding:4px 8px;font-size:12px;display:none}
</style></head><body>
<header><h1>__TITLE__</h1><div id="sub"></div></header>
<main>
<h2 data-t="cities"></h2><div id="cities"></div>
<h2 data-t="ranking"></h2>
<label><span data-t="indicator"></span> <select id="indicator"></select></label> <span id="dir"></span>
<div id="wrap"><svg id="map" xmlns="http://www.w3.org/2000/svg"><g id="shapes"></g></svg>
<div><table id="rank"></table></div></div>
<h3 data-t="dist"></h3><svg id="hist" width="620" height="120"></svg>
<h3 data-t="spread"></h3><svg id="spread" width="620" height="40"></svg>
</main><div id="tip"></div>
<script>
"use strict";
const T = __TEXT__;
const D = __DATA__;
const $ = (id) => document.getElementById(id);
const ZH = document.documentElement.lang === "zh";
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = T[e.dataset.t]; });
$("sub").textContent = `${D.summary.cities} · ${T.ok} ${D.summary.ok} · ${T.failed} ${D.summary.failed}` + (D.summary.interrupted ? ` · ${T.interrupted} ${D.summary.interrupted}` : "");
let ct = `<table><tr><th>city_id</th><th>${T.cities}</th><th>adcode</th><th>${T.status}</th><th>${T.counts}</th><th>${T.time}</th><th>${T.step}</th><th>${T.error}</th></tr>`;
for (const c of D.cities) ct += `<tr class="${c.status === "ok" ? "" : "failed"}"><td>${esc(c.id)}</td><td>${esc(c.name)}</td><td>${esc(c.adcode)}</td><td>${esc(T[c.status] || c.status)}</td><td>${c.status === "ok" ? `${c.counts.pass ?? 0}/${c.counts.fail ?? 0}/${c.counts.no_data ?? 0}` : ""}</td><td>${c.total_s == null ? "" : Math.round(c.total_s)}</td><td>${esc(c.step)}</td><td>${esc(c.error)}</td></tr>`;
$("cities").innerHTML = ct + "</table>";
const sel = $("indicator");
for (const id of D.order) sel.add(new Option((D.headline.includes(id) ? "★ " : "") + (ZH ? D.indicators[id].zh : D.indicators[id].en), id));
let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
for (const rings of Object.values(D.outlines)) for (const r of rings) for (const [x, y] of r) { minx = Math.min(minx, x); maxx = Math.max(maxx, x); miny = Math.min(miny, y); maxy = Math.max(maxy, y); }
const pad = 0.04 * Math.max(maxx - minx, maxy - miny, 1);
if (isFinite(minx)) $("map").setAttribute("viewBox", [minx - pad, -(maxy + pad), maxx - minx + 2 * pad, maxy - miny + 2 * pad].join(" "));
const path = (rings) => rings.map((r) => "M" + r.map(([x, y]) => `${x},${-y}`).join("L") + "Z").join("");
const ramp = (t) => `hsl(212,65%,${Math.round(90 - 58 * t)}%)`;
const fmt = (v, id) => (v === null || v === undefined ? "—" : Number(v).toLocaleString(ZH ? "zh-CN" : "en", {minimumFractionDigits: D.indicators[id].dp, maximumFractionDigits: D.indicators[id].dp}));
const tip = $("tip");
function draw() {
  const id = sel.value, m = D.indicators[id], g = D.values[id];
  $("dir").textContent = `${m.unit} · ${m.dir === "lower" ? T.better_low : T.better_high} · ${m.system}`;
  const nums = g.v.filter((v) => v !== null), lo = Math.min(...nums), hi = Math.max(...nums);
  let s = "";
  D.cities.forEach((c, i) => {
    const rings = D.outlines[c.id]; if (!rings) return;
    const v = g.v[i];
    s += `<path class="city" data-i="${i}" fill="${v === null ? "#ddd" : ramp(hi > lo ? (v - lo) / (hi - lo) : 0.5)}" d="${path(rings)}"/>`;
  });
  $("shapes").innerHTML = s;
  $("shapes").querySelectorAll(".city").forEach((p) => {
    p.addEventListener("mousemove", (e) => { const i = +p.dataset.i; tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 12 + "px"; tip.innerHTML = `<b>${esc(D.cities[i].name)}</b><br>${fmt(g.v[i], id)} ${esc(m.unit)} · ${esc(T[g.s[i]] || g.s[i] || T.no_data)}`; });
    p.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  });
  // ranking: best first by direction, equal values share a rank, no data after with the reason
  const rows = D.cities.map((c, i) => ({c, v: g.v[i], s: g.s[i], n: g.n[i]}));
  const ranked = rows.filter((r) => r.v !== null).sort((a, b) => (m.dir === "lower" ? a.v - b.v : b.v - a.v));
  let rk = `<tr><th>${T.rank}</th><th>${T.cities}</th><th>${T.value}</th><th>${T.status}</th></tr>`;
  ranked.forEach((r, k) => { const rank = k && ranked[k - 1].v === r.v ? r.rank = ranked[k - 1].rank : (r.rank = k + 1); rk += `<tr><td>${rank}</td><td>${esc(r.c.name)}</td><td>${fmt(r.v, id)} ${esc(m.unit)}</td><td>${esc(T[r.s] || r.s)}</td></tr>`; });
  for (const r of rows.filter((r) => r.v === null)) rk += `<tr class="nd"><td>—</td><td>${esc(r.c.name)}</td><td>${T.no_data}</td><td>${esc(r.c.status === "ok" ? r.n : T[r.c.status] || r.c.status)}</td></tr>`;
  $("rank").innerHTML = rk;
  const bins = new Array(20).fill(0);
  for (const v of nums) bins[Math.min(19, Math.floor(hi > lo ? (v - lo) / (hi - lo) * 20 : 0))]++;
  const bmax = Math.max(...bins, 1);
  $("hist").innerHTML = bins.map((b, k) => `<rect x="${10 + k * 30}" y="${100 - 90 * b / bmax}" width="28" height="${90 * b / bmax}" fill="#468"/>`).join("") + (nums.length ? `<text x="10" y="116" font-size="10">${fmt(lo, id)}</text><text x="610" y="116" font-size="10" text-anchor="end">${fmt(hi, id)}</text>` : `<text x="10" y="60">${T.no_data}</text>`);
  const sp = D.spread[id] || {}, have = D.cities.filter((c) => sp[c.id]);
  const all = have.flatMap((c) => [sp[c.id][0], sp[c.id][4]]), a = Math.min(...all), b = Math.max(...all);
  const X = (v) => 160 + (b > a ? (v - a) / (b - a) : 0.5) * 440;
  $("spread").setAttribute("height", Math.max(40, have.length * 18 + 10));
  $("spread").innerHTML = have.map((c, k) => { const q = sp[c.id], y = k * 18 + 10; return `<text x="154" y="${y + 4}" font-size="11" text-anchor="end">${esc(c.name.slice(0, 22))}</text><line x1="${X(q[0])}" x2="${X(q[4])}" y1="${y}" y2="${y}" stroke="#444"/><rect x="${X(q[1])}" y="${y - 6}" width="${Math.max(1, X(q[3]) - X(q[1]))}" height="12" fill="#9bd" stroke="#444"/><line x1="${X(q[2])}" x2="${X(q[2])}" y1="${y - 6}" y2="${y + 6}" stroke="#000" stroke-width="2"/>`; }).join("") || `<text x="10" y="24">${T.no_data}</text>`;
}
sel.addEventListener("change", draw);
if (D.order.length) draw();
</script></body></html>
"""
