// cityos dashboard: the bundle's own vector tiles drawn with MapLibre GL JS (vendored), the
// health check's indicators as choropleths through feature state. No request leaves the server
// it came from: no tile server, no CDN, no glyph server (labels in the browser's local fonts).
// The map, its layers and the live updates; loaded last, after dashboard-text.js (the words),
// dashboard-detail.js (the drill-down) and dashboard-panels.js (the panels), and starts the page.
"use strict";

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

// an option; one whose label is a word of TEXT (key) follows the language when it changes
function option(select, value, label, key) {
  const o = document.createElement("option");
  o.value = value; o.textContent = label; select.append(o);
  if (key) o.dataset.t = key;
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
    option(select, "", t("allCategories"), "allCategories");
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

// new red and orange alerts blink: their ring fades in and out every half second
function blink(map) {
  let on = true;
  setInterval(() => {
    on = !on;
    if (map.getLayer("alerts-new")) map.setPaintProperty("alerts-new", "circle-stroke-opacity", on ? 1 : 0.15);
  }, 500);
}
function follow(map) {
  const stream = new EventSource("/api/v1/map/events");
  for (const name of ["tickets", "alerts"]) {
    stream.addEventListener(name, () => live(map, name).catch((e) => console.error(e)));
  }
  // the rest once the first view is drawn: its tiles come first
  map.once("idle", () => panels(map, stream));
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
  option(psys, "", t("allSystems"), "allSystems");
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
