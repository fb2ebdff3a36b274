// cityos dashboard: the bundle's own vector tiles drawn with MapLibre GL JS (vendored), the
// health check's indicators as choropleths through feature state. No request leaves the server
// it came from: no tile server, no CDN, no glyph server (labels in the browser's local fonts).
"use strict";

const TEXT = {
  zh: {
    devices: "监测设备", offline: "离线", depth: "积水深度", housing: "房屋安全",
    gradeC: "C级（局部危房）", gradeD: "D级（整幢危房）", overdueInspection: "体检逾期",
    byChange: "同比变化", improved: "改善", worsened: "变差", unchanged: "持平", not_comparable: "不可比",
    previous: "上年", change: "变化", problems: "问题清单", allSystems: "全部体系", locate: "定位",
    gaps: "完整社区短板", renewal: "城市更新优先级", more: "另有",
    timeline: "办理过程", staffOnly: "工单详情仅限工作人员：", showTimeline: "输入密钥查看",
    askStaffKey: "请输入工作人员密钥（仅保存在本次浏览器会话中）", ticket: "工单", alert: "告警",
    when: "时间", step: "环节", who: "角色", why: "说明", due: "办结时限", readings: "触发读数",
    late: "超时", rule: "规则", department: "承办单位", state: "状态",
    allCategories: "全部类别", category: "类别", hotspots: "热点",
    trends: "趋势", ticketsPerDay: "每日工单（前五类）", ratesPerMonth: "三率（月，全市）",
    alertsPerDay: "每日告警（按领域）", other: "其他", gas: "燃气", water: "供水", drainage: "排水",
    bridge: "桥梁", device: "设备",
    title: "一屏观全城", check: "城市体检", system: "体系", level: "层级", indicator: "指标",
    colourBy: "着色", byStatus: "达标情况", byValue: "数值",
    noResults: "未加载体检结果（cityos serve BUNDLE --results RESULTS）",
    pass: "达标", fail: "未达标", no_data: "无数据", no_target: "无目标值",
    value: "数值", target: "目标", status: "状态", method: "方法", radius: "半径", sources: "数据",
    targetSource: "目标来源", note: "说明", unconfirmed: "阈值未确认 [R]",
    unconfirmedNote: "虚线边界：该单元的阈值未经确认 [R]", none: "—",
    levels: { city: "城区", subdistrict: "街道", community: "社区", unit: "单元" },
    live: "实时运行", tickets: "12345 工单", alerts: "生命线告警", open: "办理中", overdue: "超期",
    closed: "已办结（30 天）", red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色",
    priority: "更新优先级", rank: "排名", score: "得分", acknowledge: "确认",
    today: "今日工单", rates: "街道三率排名", subdistrict: "街道", response: "响应率",
    resolution: "解决率", satisfaction: "满意率", composite: "综合",
    askKey: "请输入调度员密钥（仅保存在本次浏览器会话中）", badKey: "密钥无效或无此权限",
    detected: "已发现", confirmed: "已确认", notified: "已通知", dispatched: "已派单", handled: "已处置",
  },
  en: {
    devices: "Sensors", offline: "offline", depth: "water depth", housing: "Housing safety",
    gradeC: "grade C", gradeD: "grade D", overdueInspection: "inspection overdue",
    byChange: "change", improved: "improved", worsened: "worsened", unchanged: "unchanged",
    not_comparable: "not comparable", previous: "Last year", change: "Change", problems: "Problems",
    allSystems: "all systems", locate: "Locate", gaps: "complete-community gaps",
    renewal: "renewal priority", more: "and more:",
    timeline: "Timeline", staffOnly: "Ticket details are for staff:", showTimeline: "enter a key",
    askStaffKey: "A staff key (kept in this browser session only)", ticket: "Ticket", alert: "Alert",
    when: "when", step: "step", who: "role", why: "note", due: "due", readings: "readings that raised it",
    late: "late", rule: "rule", department: "department", state: "state",
    allCategories: "all categories", category: "Category", hotspots: "Hotspots",
    trends: "Trends", ticketsPerDay: "Tickets per day (top five categories)",
    ratesPerMonth: "The three rates per month (city)", alertsPerDay: "Alerts per day by domain",
    other: "other", gas: "gas", water: "water", drainage: "drainage", bridge: "bridge", device: "device",
    title: "One map for the city", check: "City health check", system: "System", level: "Level",
    indicator: "Indicator", colourBy: "Colour by", byStatus: "status", byValue: "value",
    noResults: "No health-check results loaded (cityos serve BUNDLE --results RESULTS)",
    pass: "pass", fail: "fail", no_data: "no data", no_target: "no target",
    value: "Value", target: "Target", status: "Status", method: "Method", radius: "Radius",
    sources: "Data", targetSource: "Target source", note: "Note",
    unconfirmed: "threshold unconfirmed [R]",
    unconfirmedNote: "Dashed outline: the unit's threshold is unconfirmed [R]", none: "—",
    levels: { city: "city", subdistrict: "subdistrict", community: "community", unit: "unit" },
    live: "Live operations", tickets: "Hotline tickets", alerts: "Lifeline alerts", open: "open",
    overdue: "overdue", closed: "closed (30 days)", red: "red", orange: "orange", yellow: "yellow",
    blue: "blue", priority: "Renewal priority", rank: "rank", score: "score", acknowledge: "Acknowledge",
    today: "Tickets today", rates: "Subdistricts on the three rates", subdistrict: "Subdistrict",
    response: "response", resolution: "resolution", satisfaction: "satisfaction", composite: "composite",
    askKey: "A dispatcher's key (kept in this browser session only)", badKey: "That key is not valid or not allowed",
    detected: "detected", confirmed: "confirmed", notified: "notified", dispatched: "dispatched", handled: "handled",
  },
};
const TREND_COLOUR = { improved: "#2e7d32", worsened: "#c62828", unchanged: "#78909c", not_comparable: "#e0e0e0" };
const STATUS_COLOUR = { pass: "#2e7d32", fail: "#c62828", no_data: "#bdbdbd", no_target: "#90a4ae" };
const RAMP = ["#fff5eb", "#fdae6b", "#e6550d", "#7f2704"];
const PHASE_COLOUR = { open: "#1e88e5", overdue: "#e53935", closed: "#9e9e9e" };
const LEVEL_COLOUR = { red: "#d50000", orange: "#ff6d00", yellow: "#ffd600", blue: "#2962ff" };
const EMPTY = { type: "FeatureCollection", features: [] };
const SENSOR_OK = "#26a69a", SENSOR_OFFLINE = "#757575";
const GRADE_COLOUR = { C: "#ff8f00", D: "#4a148c" };

const asked = new URLSearchParams(location.search).get("lang");
const state = {
  lang: asked ? (asked === "en" ? "en" : "zh")
    : ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en"),
  config: null, indicators: [], values: null, rows: new Map(), keys: [], by: "status", asked: 0, live: {},
};
const t = (key) => TEXT[state.lang][key] ?? key;
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// a number for people: grouped thousands, fewer decimals the larger it is; stored values keep
// their full precision in the API
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return t("none");
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : 2;
  return v.toLocaleString(state.lang === "zh" ? "zh-CN" : "en", { maximumFractionDigits: digits });
}

async function getJSON(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

function style(cfg) {
  const src = "city";
  const level = ["==", ["get", "level"], cfg.levels[cfg.levels.length - 1] || "unit"];
  return {
    version: 8,
    sources: {
      [src]: {
        type: "vector", tiles: [location.origin + cfg.tiles], minzoom: 0, maxzoom: cfg.maxzoom,
        bounds: cfg.bounds, promoteId: { units: "key" },
      },
      tickets: { type: "geojson", data: EMPTY, cluster: true, clusterMaxZoom: 14, clusterRadius: 40 },
      alerts: { type: "geojson", data: EMPTY },
      sensors: { type: "geojson", data: EMPTY },
      housing: { type: "geojson", data: EMPTY },
      hotspots: { type: "geojson", data: EMPTY },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#f3f1ec" } },
      { id: "green_spaces", type: "fill", source: src, "source-layer": "green_spaces",
        paint: { "fill-color": "#b7dba0", "fill-opacity": 0.8 } },
      { id: "units-fill", type: "fill", source: src, "source-layer": "units", filter: level,
        paint: { "fill-color": "rgba(0,0,0,0)", "fill-opacity": 0.6 } },
      { id: "streets", type: "line", source: src, "source-layer": "streets",
        paint: { "line-color": "#8f8a80", "line-width": ["interpolate", ["linear"], ["zoom"], 13, 0.5, 17, 4] } },
      { id: "buildings", type: "fill", source: src, "source-layer": "buildings",
        paint: { "fill-color": "#c9b8a6", "fill-outline-color": "#9c8a78" } },
      { id: "facilities", type: "circle", source: src, "source-layer": "facilities",
        paint: { "circle-radius": 3, "circle-color": "#3949ab", "circle-stroke-color": "#fff", "circle-stroke-width": 1 } },
      { id: "units-line", type: "line", source: src, "source-layer": "units", filter: level,
        paint: { "line-color": "#37474f", "line-width": 1.2 } },
      { id: "units-unconfirmed", type: "line", source: src, "source-layer": "units", filter: level,
        paint: { "line-color": "#8d6e00", "line-width": 2.5, "line-dasharray": [2, 2],
                 "line-opacity": ["case", ["==", ["feature-state", "confirmed"], false], 1, 0] } },
      // hotspots: clusters of one category's tickets (100 m, at least 5), sized by their count
      { id: "hotspots", type: "circle", source: "hotspots",
        paint: { "circle-color": "rgba(255,111,0,0.18)", "circle-stroke-color": "#ff6f00", "circle-stroke-width": 1.5,
                 "circle-radius": ["interpolate", ["linear"], ["get", "requests"], 5, 18, 50, 40] } },
      { id: "ticket-clusters", type: "circle", source: "tickets", filter: ["has", "point_count"],
        paint: { "circle-color": "#1565c0", "circle-opacity": 0.8, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5,
                 "circle-radius": ["step", ["get", "point_count"], 12, 10, 16, 100, 22, 1000, 28] } },
      { id: "ticket-cluster-count", type: "symbol", source: "tickets", filter: ["has", "point_count"],
        layout: { "text-field": ["get", "point_count_abbreviated"], "text-size": 11, "text-font": ["sans-serif"] },
        paint: { "text-color": "#fff" } },
      { id: "tickets", type: "circle", source: "tickets", filter: ["!", ["has", "point_count"]],
        paint: { "circle-radius": 6, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5,
                 "circle-color": ["match", ["get", "phase"], "overdue", PHASE_COLOUR.overdue, "closed", PHASE_COLOUR.closed, PHASE_COLOUR.open] } },
      // housing safety: C (local danger) and D (whole building) by colour, an overdue
      // inspection ringed
      { id: "housing", type: "circle", source: "housing",
        paint: { "circle-radius": 6, "circle-color": ["match", ["coalesce", ["get", "grade"], ""], "D", GRADE_COLOUR.D, "C", GRADE_COLOUR.C, "#ffffff"],
                 "circle-stroke-color": ["case", ["get", "overdue"], "#d500f9", "#4e342e"],
                 "circle-stroke-width": ["case", ["get", "overdue"], 3, 1] } },
      // lifeline sensors: grey when offline, the colour of an open hazard alert, else teal; the
      // last reading beside it from z14 (water depth: the waterlogging points)
      { id: "sensors", type: "circle", source: "sensors",
        paint: { "circle-radius": 4.5, "circle-stroke-color": "#004d40", "circle-stroke-width": 1.5,
                 "circle-color": ["case", ["get", "offline"], SENSOR_OFFLINE,
                                  ["match", ["coalesce", ["get", "alert"], ""], "red", LEVEL_COLOUR.red, "orange", LEVEL_COLOUR.orange,
                                   "yellow", LEVEL_COLOUR.yellow, "blue", LEVEL_COLOUR.blue, SENSOR_OK]] } },
      { id: "sensor-readings", type: "symbol", source: "sensors", minzoom: 14,
        layout: { "text-field": ["get", "label"], "text-size": 10, "text-font": ["sans-serif"],
                  "text-offset": [0, 1.2], "text-anchor": "top" },
        paint: { "text-color": "#004d40", "text-halo-color": "#fff", "text-halo-width": 1.2 } },
      { id: "alerts", type: "circle", source: "alerts",
        paint: { "circle-radius": 9, "circle-stroke-color": "#fff", "circle-stroke-width": 2,
                 "circle-color": ["match", ["get", "level"], "red", LEVEL_COLOUR.red, "orange", LEVEL_COLOUR.orange,
                                  "yellow", LEVEL_COLOUR.yellow, LEVEL_COLOUR.blue] } },
      { id: "alerts-new", type: "circle", source: "alerts",
        filter: ["all", ["in", ["get", "level"], ["literal", ["red", "orange"]]], ["==", ["get", "state"], "detected"]],
        paint: { "circle-radius": 16, "circle-color": "rgba(0,0,0,0)", "circle-stroke-width": 3,
                 "circle-stroke-color": ["match", ["get", "level"], "red", LEVEL_COLOUR.red, LEVEL_COLOUR.orange] } },
      { id: "unit-labels", type: "symbol", source: src, "source-layer": "unit_labels", filter: level, minzoom: 12,
        layout: { "text-field": ["get", "name"], "text-size": 12, "text-font": ["sans-serif"] },
        paint: { "text-color": "#263238", "text-halo-color": "#fff", "text-halo-width": 1.5 } },
    ],
  };
}

function fillColour() {
  if (state.by === "change") {
    return ["match", ["coalesce", ["feature-state", "trend"], ""],
      ...Object.entries(TREND_COLOUR).flat(), "rgba(0,0,0,0)"];
  }
  if (state.by === "value" && state.values && state.values.range) {
    let [lo, hi] = state.values.range;
    if (hi <= lo) hi = lo + 1;
    const stops = RAMP.flatMap((c, i) => [lo + (hi - lo) * i / (RAMP.length - 1), c]);
    return ["case", ["==", ["typeof", ["feature-state", "value"]], "number"],
      ["interpolate", ["linear"], ["feature-state", "value"], ...stops],
      ["==", ["feature-state", "status"], null], "rgba(0,0,0,0)", STATUS_COLOUR.no_data];
  }
  return ["match", ["coalesce", ["feature-state", "status"], ""],
    "pass", STATUS_COLOUR.pass, "fail", STATUS_COLOUR.fail, "no_data", STATUS_COLOUR.no_data,
    "no_target", STATUS_COLOUR.no_target, "rgba(0,0,0,0)"];
}

function legend() {
  const box = document.getElementById("legend");
  box.replaceChildren();
  if (!state.values) return;
  const add = (html) => { const d = document.createElement("div"); d.innerHTML = html; box.append(d); };
  if (state.by === "change") {
    const counts = {};
    for (const r of state.values.units) counts[r.trend] = (counts[r.trend] || 0) + 1;
    for (const s of Object.keys(TREND_COLOUR)) {
      if (counts[s]) add(`<div class="row"><span class="swatch" style="background:${TREND_COLOUR[s]}"></span>${t(s)} (${counts[s]})</div>`);
    }
  } else if (state.by === "value" && state.values.range) {
    const [lo, hi] = state.values.range;
    add(`<div class="ramp" style="background:linear-gradient(to right,${RAMP.join(",")})"></div>` +
        `<div class="ends"><span>${fmt(lo)}</span><span>${fmt(hi)} ${state.values.unit || ""}</span></div>`);
    add(`<div class="row"><span class="swatch" style="background:${STATUS_COLOUR.no_data}"></span>${t("no_data")}</div>`);
  } else {
    const counts = {};
    for (const r of state.values.units) counts[r.status] = (counts[r.status] || 0) + 1;
    for (const s of Object.keys(STATUS_COLOUR)) {
      if (counts[s]) add(`<div class="row"><span class="swatch" style="background:${STATUS_COLOUR[s]}"></span>${t(s)} (${counts[s]})</div>`);
    }
  }
  if (state.values.units.some((r) => r.confirmed === false)) add(`<div class="note unconfirmed">${t("unconfirmedNote")}</div>`);
}

function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value; o.textContent = label; select.append(o);
}

function fillSelects(keep) {
  const sys = document.getElementById("system"), lvl = document.getElementById("level"),
    ind = document.getElementById("indicator");
  const systems = [...new Set(state.indicators.map((i) => i.system))];
  // the first view: the finest level, the first indicator measured somewhere
  const first = state.indicators.filter((i) => i.measured > 0)
    .sort((a, b) => state.config.levels.indexOf(b.level) - state.config.levels.indexOf(a.level))[0];
  const prev = keep ? [sys.value, lvl.value, ind.value]
    : first ? [first.system, first.level, first.indicator_id] : [];
  sys.replaceChildren(); systems.forEach((s) => option(sys, s, s === "renewal" ? t("renewal") : s));
  if (prev[0] && systems.includes(prev[0])) sys.value = prev[0];
  const levels = state.config.levels.filter((l) => state.indicators.some((i) => i.system === sys.value && i.level === l));
  lvl.replaceChildren(); levels.forEach((l) => option(lvl, l, TEXT[state.lang].levels[l] || l));
  if (prev[1] && levels.includes(prev[1])) lvl.value = prev[1];
  const list = state.indicators.filter((i) => i.system === sys.value && i.level === lvl.value);
  ind.replaceChildren();
  list.forEach((i) => option(ind, i.indicator_id, `${state.lang === "zh" ? i.name_zh : i.name_en}${i.confirmed ? "" : " [R]"}`));
  if (prev[2] && list.some((i) => i.indicator_id === prev[2])) ind.value = prev[2];
}

async function choropleth(map) {
  const sys = document.getElementById("system").value, lvl = document.getElementById("level").value,
    ind = document.getElementById("indicator").value;
  if (!sys || !lvl || !ind) return;
  const asked = ++state.asked;  // selects changed quickly: only the last answer is drawn
  const values = await getJSON(`/api/v1/map/indicators/${encodeURIComponent(sys)}/${encodeURIComponent(lvl)}/${encodeURIComponent(ind)}`);
  if (asked !== state.asked) return;
  // what every unit shares comes once, in "common"
  values.units = values.units.map((r) => ({ ...values.common, ...r }));
  const keys = new Set(values.units.map((r) => r.key));
  // the last view's units are cleared with nulls, not removeFeatureState: MapLibre drops a
  // falsy value (0, false) set on a feature whose removal is still queued
  for (const key of state.keys) {
    if (!keys.has(key)) map.setFeatureState({ source: "city", sourceLayer: "units", id: key }, { value: null, status: null, confirmed: null, trend: null });
  }
  state.values = values; state.rows = new Map(values.units.map((r) => [r.key, r]));
  state.keys = [...keys];
  for (const r of values.units) {
    map.setFeatureState({ source: "city", sourceLayer: "units", id: r.key },
      { value: r.value ?? null, status: r.status ?? null, confirmed: r.confirmed ?? null, trend: r.trend ?? null });
  }
  const filter = ["==", ["get", "level"], lvl];
  for (const id of ["units-fill", "units-line", "units-unconfirmed", "unit-labels"]) map.setFilter(id, filter);
  map.setPaintProperty("units-fill", "fill-color", fillColour());
  legend();
  document.body.dataset.choropleth = `${sys}/${lvl}/${ind}`;
}

function popupHTML(props) {
  const r = state.rows.get(props.key);
  let html = `<h3>${esc(props.name || props.unit_id)}</h3>`;
  if (!r) return html;
  const v = state.values;
  html += `<p class="indicator">${esc(state.lang === "zh" ? v.name_zh : v.name_en)}</p>`;
  const rows = [
    [t("value"), r.value === null ? `${t("no_data")}` : `${fmt(r.value)} ${esc(r.unit || "")}`],
    [t("target"), r.target === null ? t("none") : `${esc(r.target_op || "")} ${fmt(r.target)}${r.confirmed ? "" : ` <span class="unconfirmed">(${t("unconfirmed")})</span>`}`],
    [t("status"), `<span class="status-${esc(r.status)}">${t(r.status)}</span>`],
    [t("method"), esc(r.method) + (r.radius_m ? ` · ${t("radius")} ${fmt(r.radius_m)} m` : "")],
    [t("sources"), esc(r.sources)],
    [t("targetSource"), esc(r.target_source)],
  ];
  if (r.trend !== undefined) {
    rows.splice(1, 0, [t("previous"), r.previous === null ? t("no_data") : `${fmt(r.previous)} ${esc(r.unit || "")}`],
      [t("change"), `${r.change === null ? t("none") : (r.change > 0 ? "+" : "") + fmt(r.change)} <span class="trend-${esc(r.trend)}">${t(r.trend)}</span>`]);
  }
  if (r.note) rows.push([t("note"), esc(r.note)]);
  return html + "<table>" + rows.map(([k, val]) => `<tr><td>${esc(k)}</td><td>${val}</td></tr>`).join("") + "</table>";
}

// a clicked unit side by side: renewal priority, tickets, alerts, every indicator at its level
async function detail(props) {
  const [level, ...rest] = String(props.key).split(":");
  const d = await getJSON(`/api/v1/map/units/${encodeURIComponent(level)}/${encodeURIComponent(rest.join(":"))}`);
  const zh = state.lang === "zh";
  let html = `<h2>${esc(d.name || props.name || d.unit_id)} <small>${esc(TEXT[state.lang].levels[level] || level)}</small></h2>`;
  if (d.priority) {
    const p = d.priority;
    html += `<h3>${t("priority")}</h3><p>${t("rank")} <b>${p.rank}</b> / ${p.of} · ${t("score")} ${fmt(p.score)}<br>${esc(zh ? p.explanation : p.explanation_en)}</p>`;
  }
  const tk = d.tickets;
  html += `<h3>${t("tickets")}</h3><p>${t("open")} <b>${tk.open}</b> · ${t("overdue")} <b>${tk.overdue}</b> · ${t("closed")} <b>${tk.closed}</b></p>`;
  const al = Object.entries(d.alerts);
  html += `<h3>${t("alerts")}</h3><p>${al.length ? al.map(([k, n]) => `${t(k)} <b>${n}</b>`).join(" · ") : t("none")}</p>`;
  const systems = [...new Set(d.indicators.map((i) => i.system))];
  for (const sys of systems) {
    html += `<h3>${esc(sys)}</h3><table>` + d.indicators.filter((i) => i.system === sys).map((i) =>
      `<tr><td>${esc(zh ? i.name_zh : i.name_en)}${i.confirmed ? "" : " [R]"}</td>` +
      `<td class="num">${i.value === null ? "—" : fmt(i.value) + " " + esc(i.unit || "")}</td>` +
      `<td class="status-${esc(i.status)}">${t(i.status)}</td></tr>`).join("") + "</table>";
  }
  document.getElementById("detail-body").innerHTML = html;
  document.getElementById("detail").hidden = false;
  document.body.dataset.detail = props.key;
}

function translate() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  document.getElementById("lang").textContent = state.lang === "zh" ? "EN" : "中文";
}

// the tickets of the category chosen (all: every one); the counts stay the whole city's
function ticketFilter(map) {
  const data = state.ticketData;
  if (!data) return;
  const code = document.getElementById("ticket-category").value;
  map.getSource("tickets").setData(code ? { ...data, features: data.features.filter((f) => f.properties.service_code === code) } : data);
  const select = document.getElementById("ticket-category");
  const codes = [...new Set(data.features.map((f) => f.properties.service_code))].sort();
  const have = [...select.options].map((o) => o.value).slice(1);
  if (codes.join() !== have.join()) {
    select.replaceChildren();
    option(select, "", t("allCategories"));
    for (const c of codes) option(select, c, c);
    select.value = codes.includes(code) ? code : "";
  }
  document.body.dataset.category = code;
}

// the live layers: refetched whenever the event stream says the store changed
async function live(map, name) {
  const data = await getJSON(`/api/v1/map/${name}`);
  if (name === "tickets") { state.ticketData = data; ticketFilter(map); } else map.getSource(name).setData(data);
  const counts = {};
  for (const f of data.features) {
    const k = name === "tickets" ? f.properties.phase : f.properties.level;
    counts[k] = (counts[k] || 0) + 1;
  }
  state.live[name] = counts;
  if (name === "alerts") ticker(map, data);
  if (name === "tickets") {
    const today = new Date().toDateString();
    document.getElementById("live-today").textContent = String(
      data.features.filter((f) => new Date(f.properties.requested_at).toDateString() === today).length);
    rates().catch((e) => console.error(e));
  }
  const box = document.getElementById(`live-${name}`);
  const keys = name === "tickets" ? Object.keys(PHASE_COLOUR) : Object.keys(LEVEL_COLOUR);
  const colours = name === "tickets" ? PHASE_COLOUR : LEVEL_COLOUR;
  box.innerHTML = keys.map((k) => `<span class="count"><span class="swatch" style="background:${colours[k]}"></span>${t(k)} <b>${counts[k] || 0}</b></span>`).join(" ");
  document.body.dataset[name] = String(data.features.length);
}

// the subdistricts ranked on this month's composite of the three rates (三率), no data last
const RATES = ["response", "resolution", "satisfaction", "composite"];
async function rates() {
  const month = new Date().toISOString().slice(0, 7);
  const rows = await getJSON(`/api/v1/rates?month=${month}&level=subdistrict`);
  const groups = new Map();
  for (const r of rows) {
    if (!groups.has(r.group)) groups.set(r.group, {});
    groups.get(r.group)[r.rate] = r.percent;
  }
  const ranked = [...groups.entries()].sort(([, a], [, b]) =>
    (b.composite ?? -1) - (a.composite ?? -1));
  const head = `<tr><th>${t("subdistrict")}</th>${RATES.map((k) => `<th>${t(k)}</th>`).join("")}</tr>`;
  const body = ranked.map(([g, v]) => `<tr data-group="${esc(g)}"><td>${esc(g)}</td>` +
    RATES.map((k) => `<td>${v[k] === null || v[k] === undefined ? "—" : fmt(v[k]) + "%"}</td>`).join("") + "</tr>").join("");
  document.getElementById("rates-table").innerHTML = head + body;
  document.getElementById("rates-month").textContent = month;
  document.body.dataset.rates = String(ranked.length);
}

// the latest alerts along the bottom; a new one is acknowledged (the lifecycle's "confirm"
// step) with a dispatcher's key, asked for once and kept in this browser session only
function ticker(map, data) {
  const box = document.getElementById("ticker");
  const latest = [...data.features].sort((a, b) => String(b.properties.raised_at).localeCompare(String(a.properties.raised_at))).slice(0, 6);
  box.replaceChildren();
  for (const f of latest) {
    const p = f.properties;
    const item = document.createElement("div");
    item.className = "alert"; item.dataset.alert = p.id; item.dataset.state = p.state;
    item.style.borderLeftColor = LEVEL_COLOUR[p.level] || "#999";
    item.textContent = `${t(p.level)} · ${p.event} · ${String(p.raised_at).slice(0, 16).replace("T", " ")} · ${t(p.state)}`;
    if (p.state === "detected") {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = t("acknowledge");
      b.addEventListener("click", () => acknowledge(map, p.id).catch((e) => console.error(e)));
      item.append(b);
    }
    item.addEventListener("click", (e) => { if (e.target === item) map.flyTo({ center: f.geometry.coordinates, zoom: Math.max(map.getZoom(), 15) }); });
    box.append(item);
  }
}

async function acknowledge(map, id) {
  let key = sessionStorage.getItem("cityos-key");
  if (!key) key = prompt(t("askKey"));
  if (!key) return;
  const r = await fetch(`/api/v1/alerts/${id}/actions/confirm`, {
    method: "POST", headers: { "Content-Type": "application/json", "X-API-Key": key },
    body: JSON.stringify({ reason: "acknowledged on the dashboard" }),
  });
  if (r.status === 401 || r.status === 403) {
    sessionStorage.removeItem("cityos-key");
    alert(t("badKey"));
    return;
  }
  if (!r.ok) throw new Error(`acknowledge ${id}: ${r.status}`);
  sessionStorage.setItem("cityos-key", key);
  await live(map, "alerts");
}

function showDetail(html, mark) {
  document.getElementById("detail-body").innerHTML = html;
  document.getElementById("detail").hidden = false;
  document.body.dataset.timeline = mark;
}

const time = (iso) => (iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "short", timeStyle: "short" }) : t("none"));

// a clicked ticket: its public facts for everyone; its timeline (reporter-free) with a staff key
async function ticketDetail(props, ask) {
  let key = sessionStorage.getItem("cityos-key");
  if (!key && ask) key = prompt(t("askStaffKey"));
  let html = `<h2>${t("ticket")} ${esc(props.id)} <small>${esc(props.service_code)}</small></h2>` +
    `<p>${t(props.phase)} · ${esc(props.state)} · ${time(props.requested_at)}</p>`;
  if (!key) {
    showDetail(html + `<p>${t("staffOnly")} <button type="button" id="ask-key">${t("showTimeline")}</button></p>`, `ticket:${props.id}:public`);
    document.getElementById("ask-key").addEventListener("click", () => ticketDetail(props, true).catch((e) => console.error(e)));
    return;
  }
  const r = await fetch(`/api/v1/requests/${props.id}`, { headers: { "X-API-Key": key } });
  if (r.status === 401 || r.status === 403) {
    sessionStorage.removeItem("cityos-key");
    showDetail(html + `<p>${t("badKey")}</p>`, `ticket:${props.id}:refused`);
    return;
  }
  if (!r.ok) throw new Error(`ticket ${props.id}: ${r.status}`);
  sessionStorage.setItem("cityos-key", key);
  const d = await r.json();
  html += `<p>${t("department")} <b>${esc(d.department)}</b> · ${esc(d.urgency)} · ${t("due")} ${time(d.due.resolve)}${d.overdue ? ` · <b class="status-fail">${t("overdue")}</b>` : ""}</p>`;
  html += `<h3>${t("timeline")}</h3><table class="timeline">` + d.transitions.map((x) =>
    `<tr><td>${time(x.at)}</td><td><b>${esc(x.action)}</b> → ${esc(x.to_state)}</td><td>${esc(x.role)}</td><td>${esc(x.reason || "")}</td></tr>`).join("") + "</table>";
  showDetail(html, `ticket:${props.id}:${d.transitions.length}`);
}

// a clicked alert: its rule, the readings that raised it and every lifecycle step, timed
async function alertDetail(id) {
  const a = await getJSON(`/api/v1/alerts/${id}`);
  let html = `<h2>${t("alert")} ${a.id} <small style="color:${LEVEL_COLOUR[a.level]}">${t(a.level)}</small></h2>` +
    `<p>${esc(a.event)}</p><p>${t("rule")} ${esc(a.rule.id)} (${esc(a.rule.version)}) · ${esc(a.rule.source || "")}</p>`;
  if (a.context) html += `<p>${esc(a.context)}</p>`;
  html += `<h3>${t("readings")}</h3><p>${a.readings.slice(-6).map(([at, v]) => `${time(at)} <b>${fmt(v)}</b>`).join(" · ")}</p>`;
  html += `<h3>${t("timeline")}</h3><table class="timeline">` + a.steps.map((x) =>
    `<tr><td>${time(x.at)}</td><td><b>${esc(x.action)}</b> → ${esc(x.to)}</td><td>${esc(x.role)}</td>` +
    `<td>${x.late ? `<b class="status-fail">${t("late")}</b> ` : ""}${esc(x.reason || "")}</td></tr>`).join("") + "</table>";
  showDetail(html, `alert:${a.id}:${a.steps.length}`);
}

// trends as charts (uPlot, vendored): tickets per day of the top categories, the city's three
// rates per month, alerts per day by domain; redrawn when tickets or alerts change
const SERIES_COLOURS = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#757575"];
function chart(el, xs, named, opts = {}) {
  el.replaceChildren();
  const names = Object.keys(named);
  const series = [{}, ...names.map((n, i) => ({
    label: opts.label ? opts.label(n) : n, stroke: SERIES_COLOURS[i % SERIES_COLOURS.length], width: 1.5,
    spanGaps: false, value: (u, v) => (v === null || v === undefined ? t("none") : fmt(v) + (opts.unit || "")),
  }))];
  return new uPlot({
    width: 310, height: 110, series, legend: { live: false },
    scales: { x: { time: true }, ...(opts.range ? { y: { range: opts.range } } : {}) },
    axes: [{ size: 24, font: "10px sans-serif" }, { size: 34, font: "10px sans-serif" }],
  }, [xs, ...names.map((n) => named[n])], el);
}

async function hotspots(map) {
  const data = await getJSON("/api/v1/map/hotspots");
  map.getSource("hotspots").setData(data);
  document.body.dataset.hotspots = String(data.features.length);
}

async function trendCharts(_map) {
  const d = await getJSON("/api/v1/map/trends");
  const days = d.days.map((s) => Date.parse(s + "T00:00:00Z") / 1000);
  chart(document.getElementById("chart-tickets"), days, d.tickets, { label: (n) => (n === "other" ? t("other") : n) });
  const months = d.months.map((m) => Date.parse(m + "-01T00:00:00Z") / 1000);
  const rates = Object.fromEntries(Object.entries(d.rates).map(([k, v]) => [k, v.map((x) => x.percent)]));
  chart(document.getElementById("chart-rates"), months, rates, { label: t, unit: "%", range: [0, 100] });
  chart(document.getElementById("chart-alerts"), days, d.alerts, { label: t });
  document.body.dataset.trends = `${Object.keys(d.tickets).length}/${d.months.length}/${Object.keys(d.alerts).length}`;
}

// new red and orange alerts blink: their ring fades in and out every half second
function blink(map) {
  let on = true;
  setInterval(() => {
    on = !on;
    if (map.getLayer("alerts-new")) map.setPaintProperty("alerts-new", "circle-stroke-opacity", on ? 1 : 0.15);
  }, 500);
}

// the problem list: every failing indicator in a unit, the city first; "locate" draws its
// indicator and flies to the unit
async function problems(map) {
  const which = document.getElementById("problems-system").value;
  const d = await getJSON(`/api/v1/map/problems${which ? `?system=${encodeURIComponent(which)}` : ""}`);
  const zh = state.lang === "zh";
  const shown = d.problems.slice(0, 40);
  document.getElementById("problems-count").textContent = String(d.count);
  document.getElementById("problems-list").innerHTML = shown.map((p, i) =>
    `<li data-key="${esc(p.key)}"><button type="button" data-i="${i}">${t("locate")}</button> ` +
    `<b>${esc(p.unit_name || p.unit_id)}</b> <small>${esc(TEXT[state.lang].levels[p.level] || p.level)}</small>: ` +
    `${esc(zh ? p.name_zh : p.name_en)} ${fmt(p.value)} ${esc(p.unit || "")} (${t("target")} ${esc(p.target_op || "")} ${fmt(p.target)})</li>`).join("") +
    (d.count > shown.length ? `<li class="more">${t("more")} ${d.count - shown.length}</li>` : "");
  for (const b of document.querySelectorAll("#problems-list button")) {
    b.addEventListener("click", () => locate(map, shown[Number(b.dataset.i)]).catch((e) => console.error(e)));
  }
  document.body.dataset.problems = String(d.count);
}

async function locate(map, p) {
  const sys = document.getElementById("system"), lvl = document.getElementById("level"), ind = document.getElementById("indicator");
  sys.value = p.system; fillSelects(true); lvl.value = p.level; fillSelects(true); ind.value = p.indicator_id;
  await choropleth(map);
  if (p.bbox) map.fitBounds(p.bbox, { padding: 60, duration: 0 });
  document.body.dataset.located = p.key;
}

// the sensors and their last readings: with every alert change (a device going offline is one)
// and every 30 s (readings come far more often than a page needs them)
async function sensors(map) {
  const data = await getJSON("/api/v1/map/sensors");
  for (const f of data.features) {
    const p = f.properties;
    p.label = p.value === null ? "" : `${p.property === "water_depth" ? t("depth") + " " : ""}${fmt(p.value)} ${p.unit}`;
  }
  map.getSource("sensors").setData(data);
  const offline = data.features.filter((f) => f.properties.offline).length;
  document.getElementById("live-devices").innerHTML =
    `<b>${data.features.length}</b>, <span class="count"><span class="swatch" style="background:${SENSOR_OFFLINE}"></span>${t("offline")} <b>${offline}</b></span>`;
  document.body.dataset.sensors = String(data.features.length);
  document.body.dataset.offline = String(offline);
}

// housing safety: C/D buildings and overdue inspections (they change when an inspection is
// recorded: read every minute)
async function housing(map) {
  const data = await getJSON("/api/v1/map/housing");
  map.getSource("housing").setData(data);
  const n = (f) => data.features.filter(f).length;
  const c = n((f) => f.properties.grade === "C"), d = n((f) => f.properties.grade === "D"), late = n((f) => f.properties.overdue);
  const swatch = (colour) => `<span class="swatch" style="background:${colour}"></span>`;
  document.getElementById("live-housing").innerHTML =
    `<span class="count">${swatch(GRADE_COLOUR.C)}${t("gradeC")} <b>${c}</b></span> <span class="count">${swatch(GRADE_COLOUR.D)}${t("gradeD")} <b>${d}</b></span> ` +
    `<span class="count"><span class="swatch ring"></span>${t("overdueInspection")} <b>${late}</b></span>`;
  document.body.dataset.housing = `${c}/${d}/${late}`;
}

function follow(map) {
  const stream = new EventSource("/api/v1/map/events");
  for (const name of ["tickets", "alerts"]) {
    stream.addEventListener(name, () => live(map, name).catch((e) => console.error(e)));
  }
  // the rest once the first view is drawn: its tiles come first
  map.once("idle", () => panels(map, stream));
}

// sensors (with every alert change and every 30 s), the trend charts and hotspots (at most
// every 10 s however often the store changes), housing safety (every minute), the problem list
function panels(map, stream) {
  const run = (f) => () => f(map).catch((e) => console.error(e));
  const refresh = run(sensors), charts = run(trendCharts), spots = run(hotspots), houses = run(housing);
  let pending = null;
  const later = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; charts(); spots(); }, 10000);
  };
  refresh(); charts(); spots(); houses();
  if (state.indicators.length) run(problems)();
  stream.addEventListener("alerts", refresh);
  stream.addEventListener("tickets", later);
  stream.addEventListener("alerts", later);
  setInterval(refresh, 30000);
  setInterval(houses, 60000);
}

async function main() {
  translate();
  const cfg = state.config = await getJSON("/api/v1/map");
  const map = new maplibregl.Map({
    container: "map", style: style(cfg), bounds: cfg.bounds,
    // on a wide screen the city sits between the panel (left) and the trends (right)
    fitBoundsOptions: { padding: innerWidth > 1100 ? { top: 20, bottom: 60, left: 340, right: 390 } : 20 },
    attributionControl: { customAttribution: "© OpenStreetMap contributors" },
  });
  // registered at once: the map may finish loading before the indicators' list comes
  const loaded = new Promise((done) => map.once("load", done));
  map.addControl(new maplibregl.NavigationControl(), "top-right");
  map.addControl(new maplibregl.ScaleControl(), "bottom-right");
  window.cityos = { map, state };
  const listing = await getJSON("/api/v1/map/indicators");
  state.indicators = listing.indicators;
  document.getElementById("no-results").hidden = state.indicators.length > 0;
  fillSelects(false);
  if (cfg.previous) document.getElementById("by-change").hidden = false;
  document.getElementById("problems").hidden = state.indicators.length === 0;
  const psys = document.getElementById("problems-system");
  option(psys, "", t("allSystems"));
  for (const s of new Set(state.indicators.map((i) => i.system).filter((s) => s !== "renewal"))) {
    option(psys, s, s === "complete-community" ? `${s} (${t("gaps")})` : s);
  }
  psys.addEventListener("change", () => problems(map).catch((e) => console.error(e)));
  document.getElementById("ticket-category").addEventListener("change", () => ticketFilter(map));
  const redraw = () => choropleth(map).catch((e) => console.error(e));
  document.getElementById("system").addEventListener("change", () => { fillSelects(true); redraw(); });
  document.getElementById("level").addEventListener("change", () => { fillSelects(true); redraw(); });
  document.getElementById("indicator").addEventListener("change", redraw);
  for (const radio of document.querySelectorAll('input[name="by"]')) {
    radio.addEventListener("change", () => { state.by = radio.value; map.setPaintProperty("units-fill", "fill-color", fillColour()); legend(); });
  }
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh"; translate(); fillSelects(true); legend();
  });
  const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false });
  map.on("mousemove", "units-fill", (e) => {
    const f = e.features && e.features[0];
    if (!f) return;
    popup.setLngLat(e.lngLat).setHTML(popupHTML(f.properties)).addTo(map);
  });
  map.on("mouseleave", "units-fill", () => popup.remove());
  // a ticket or an alert on top of a unit: its own timeline, not the unit's
  map.on("click", (e) => {
    const hit = map.queryRenderedFeatures(e.point, { layers: ["alerts", "tickets"] })[0];
    if (!hit) return;
    e.preventDefault();
    if (hit.layer.id === "alerts") alertDetail(hit.properties.id).catch((err) => console.error(err));
    else ticketDetail(hit.properties, false).catch((err) => console.error(err));
  });
  for (const id of ["alerts", "tickets"]) {
    map.on("mouseenter", id, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; });
  }
  map.on("click", "units-fill", (e) => {
    if (e.defaultPrevented) return;
    const f = e.features && e.features[0];
    if (f) detail(f.properties).catch((err) => console.error(err));
  });
  document.getElementById("detail-close").addEventListener("click", () => {
    document.getElementById("detail").hidden = true;
  });
  await loaded;
  document.body.dataset.loaded = "1";
  redraw();
  follow(map);
  blink(map);
}

main().catch((e) => { console.error(e); document.body.dataset.error = String(e); });
