// cityos dashboard, the panels beside the map: the rates ranking, the alert ticker with
// acknowledge, the trend charts, hotspots, the problem list, sensors and housing safety.
"use strict";

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
  // the city's three rates this month, each with what it counts; nothing to count is no data
  const now = ["response", "resolution", "satisfaction"].map((k) => [k, d.rates[k].at(-1)]);
  document.getElementById("live-rates").innerHTML = now.map(([k, x]) =>
    `<span class="count" title="${esc(fmt(x.numerator))} / ${esc(fmt(x.denominator))}">${t(k)} ` +
    `<b>${x.percent === null ? t("no_data") : fmt(x.percent) + "%"}</b></span>`).join(" ");
  document.body.dataset.liveRates = now.map(([, x]) => x.percent ?? "no_data").join("/");
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
