// cityos dashboard, the drill-down: a clicked unit, ticket or alert side by side in the detail panel.
"use strict";

// a clicked unit side by side: renewal priority, tickets, alerts, housing safety, every indicator
// at its level
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
  const h = d.housing;
  html += `<h3>${t("housing")}</h3><p>${t("gradeC")} <b>${h.C}</b> · ${t("gradeD")} <b>${h.D}</b> · ${t("overdueInspection")} <b>${h.overdue}</b></p>`;
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
