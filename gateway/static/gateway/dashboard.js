// The gateway's dashboard: one SSE stream (GET events), read with fetch so that
// the admin token can travel in an Authorization header. Everything is drawn
// here with DOM nodes and SVG paths (text set with textContent only); nothing
// is loaded from anywhere else. Colours come with the numbers (the server
// decides them: gateway/observe/levels.py); this script only paints them.
"use strict";

const HISTORY = 300;  // seconds on each chart (as the server keeps)
const TOKEN_KEY = "gateway-admin-token";
const state = { routes: new Map(), upstreams: new Map(), retry: 1000 };

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function rate(v) {
  if (v === null || v === undefined) return "–";
  return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en");
}

function ms(v) {
  if (v === null || v === undefined) return "–";
  return (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en")) + " ms";
}

// --- charts -------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";

function count(v) {
  return v === null || v === undefined ? "–" : v.toLocaleString("en");
}

function sparkline() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${HISTORY} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  for (const cls of ["base", "area", "line"]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("class", cls);
    svg.appendChild(path);
  }
  svg.children[0].setAttribute("d", `M0,99L${HISTORY},99`);  // the zero line, all five minutes
  return svg;
}

// values: one per second, oldest first (null: nothing to show that second).
// Returns the chart's scale: the value its top stands for.
function draw(svg, values) {
  const top = Math.max(...values.filter(v => v !== null), 0) || 1;
  const x0 = HISTORY - values.length;
  let line = "", area = "", open = false, start = 0, last = 0;
  values.forEach((v, i) => {
    const x = x0 + i;
    if (v === null) {
      if (open) area += `L${last},100L${start},100Z`;
      open = false;
      return;
    }
    const y = (96 - (v / top) * 90).toFixed(1);
    if (!open) { line += `M${x},${y}`; area += `M${x},100L${x},${y}`; start = x; open = true; }
    else { line += `L${x},${y}`; area += `L${x},${y}`; }
    last = x;
  });
  if (open) area += `L${last},100L${start},100Z`;
  const [, areaPath, linePath] = svg.children;
  areaPath.setAttribute("d", area);
  linePath.setAttribute("d", line);
  return top;
}

// --- routes ---------------------------------------------------------------------------
// A point: [second, requests, 4xx, 5xx, 429, p50 ms, p99 ms, in flight]
const ROUTE_METRICS = [
  ["rps", "req/s", 1, rate],
  ["r4xx", "4xx/s", 2, rate],
  ["r5xx", "5xx/s", 3, rate],
  ["r429", "429/s", 4, rate],
  ["p50", "p50", 5, ms],
  ["p99", "p99", 6, ms],
  ["in_flight", "in flight", 7, v => v.toLocaleString("en")],
];

function routeCard(r) {
  const card = el("article", "card");
  card.dataset.route = r.name;
  const head = el("div", "head");
  const path = (r.methods.length ? r.methods.join(" ") + " " : "") + r.path;
  head.append(el("span", "name", r.name), el("span", "kind", r.kind));
  card.append(head, el("div", "path", path));
  if (r.policies && r.policies.length) {  // what the route's stack does: auth, limits, CORS, hooks
    card.append(el("div", "policies", r.policies.join(" · ")));
  }
  const { grid, parts } = metricGrid(ROUTE_METRICS);
  const statuses = el("div", "statuses muted");
  card.append(grid, statuses);
  return { card, parts, statuses, points: [] };
}

// A grid of labelled numbers, each over its chart with the chart's scale:
// parts[key] = {box, value, chart, scale}.
function metricGrid(metrics) {
  const grid = el("div", "metrics");
  const parts = {};
  for (const [key, label] of metrics) {
    const box = el("div", "metric");
    box.dataset.metric = key;
    const value = el("div", "value", "–");
    const chart = sparkline();
    const scale = el("div", "scale");
    box.append(el("div", "label", label), value, scale, chart);
    grid.append(box);
    parts[key] = { box, value, chart, scale };
  }
  return { grid, parts };
}

// Each metric: its number, its colour (as the server decided), its chart and scale.
function paintMetrics(view, metrics, item, levels) {
  for (const [key, , column, format] of metrics) {
    const part = view.parts[key];
    part.value.textContent = format(item[key]);
    part.box.className = "metric" + (levels[key] ? " " + levels[key] : "");
    const top = draw(part.chart, view.points.map(p => p[column]));
    part.scale.textContent = "max " + format(top);
  }
}

function statusLine(statuses) {
  const codes = Object.entries(statuses || {});
  if (!codes.length) return "no error answers in the last 10 s";
  return codes.map(([code, n]) => `${code} ×${n.toLocaleString("en")}`).join(" · ") + " in the last 10 s";
}

// One card per item, in the document's order; cards of items gone are removed.
function renderCards(holderId, items, views, make, update) {
  const holder = document.getElementById(holderId);
  const seen = new Set();
  items.forEach((item, index) => {
    seen.add(item.name);
    let view = views.get(item.name);
    if (!view) { view = make(item); views.set(item.name, view); }
    if (holder.children[index] !== view.card) holder.insertBefore(view.card, holder.children[index] || null);
    update(view, item);
  });
  for (const [name, view] of views) {
    if (!seen.has(name)) { view.card.remove(); views.delete(name); }
  }
}

function mergePoints(old, fresh, full) {
  const points = full ? fresh.slice() : old.concat(fresh.filter(p => !old.length || p[0] > old[old.length - 1][0]));
  return points.slice(-HISTORY);
}

function renderRoutes(routes, full) {
  renderCards("routes", routes, state.routes, routeCard, (view, r) => {
    view.points = mergePoints(view.points, r.points, full);
    paintMetrics(view, ROUTE_METRICS, r, r.levels);
    view.statuses.textContent = statusLine(r.statuses);
    view.card.className = "card " + r.level;
  });
}

// --- totals -----------------------------------------------------------------------------
// A point: [second, requests, 4xx, 5xx, 429, in flight]
const TOTAL_METRICS = [
  ["rps", "req/s", 1, rate],
  ["r4xx", "4xx/s", 2, rate],
  ["r5xx", "5xx/s", 3, rate],
  ["r429", "429/s", 4, rate],
  ["p50", "p50", null, ms],
  ["p99", "p99", null, ms],
  ["in_flight", "in flight", 5, count],
];

function renderTotals(totals, full) {
  const holder = document.getElementById("totals");
  if (!totals) { holder.hidden = true; return; }
  holder.hidden = false;
  if (!state.totals) {
    const card = el("article", "card totals");
    card.dataset.totals = "";
    const head = el("div", "head");
    head.append(el("span", "name", "All routes"));
    const { grid, parts } = metricGrid(TOTAL_METRICS);
    const statuses = el("div", "statuses muted");
    card.append(head, grid, statuses);
    holder.append(card);
    state.totals = { card, parts, statuses, points: [] };
  }
  const view = state.totals;
  view.points = mergePoints(view.points, totals.points, full);
  for (const [key, , column, format] of TOTAL_METRICS) {
    const part = view.parts[key];
    part.value.textContent = format(totals[key]);
    part.box.className = "metric" + (totals.levels[key] ? " " + totals.levels[key] : "");
    if (column === null) { part.chart.style.visibility = "hidden"; part.scale.textContent = ""; continue; }
    part.scale.textContent = "max " + format(draw(part.chart, view.points.map(p => p[column])));
  }
  view.statuses.textContent = statusLine(totals.statuses);
  view.card.className = "card totals " + totals.level;
}

// --- upstreams ----------------------------------------------------------------------------
// A point: [second, calls, failures, p50 ms, p99 ms]
const UPSTREAM_METRICS = [
  ["cps", "calls/s", 1, rate],
  ["fps", "failures/s", 2, rate],
  ["p50", "p50", 3, ms],
  ["p99", "p99", 4, ms],
];

function upstreamCard(u) {
  const card = el("article", "card");
  card.dataset.upstream = u.name;
  const head = el("div", "head");
  const circuit = el("span", "pill");
  circuit.dataset.circuit = "";
  head.append(el("span", "name", u.name), circuit);
  circuit.style.marginLeft = "auto";
  const { grid, parts } = metricGrid(UPSTREAM_METRICS);
  const targets = el("div", "targets");
  card.append(head, el("div", "path", u.url), grid, targets);
  return { card, circuit, parts, targets, points: [] };
}

// An upstream's targets (SPEC 3.17): name, weight, state, calls in flight.
function renderTargets(holder, targets) {
  holder.replaceChildren();
  if (!targets || targets.length < 2) return;
  for (const t of targets) {
    const row = el("div", "target");
    row.dataset.target = t.name;
    row.dataset.state = t.state;
    const pill = el("span", "pill " + (t.state === "healthy" ? "ok" : "fail"), t.state);
    const extra = t.state === "ejected" ? " · back in " + t.ejected_for + " s" : "";
    row.append(
      el("span", "name", t.name),
      el("span", "muted small", "weight " + t.weight + " · " + t.in_flight + " in flight" + extra),
      pill,
    );
    holder.append(row);
  }
}

function renderUpstreams(upstreams, full) {
  renderCards("upstreams", upstreams, state.upstreams, upstreamCard, (view, u) => {
    view.points = mergePoints(view.points, u.points, full);
    view.circuit.textContent = u.circuit === "none" ? "no breaker" : "circuit " + u.circuit;
    view.circuit.className = "pill " + (u.levels.circuit || (u.circuit === "closed" ? "ok" : ""));
    view.circuit.dataset.circuit = u.circuit;
    paintMetrics(view, UPSTREAM_METRICS, u, u.levels);
    renderTargets(view.targets, u.targets);
    view.card.className = "card " + u.level;
  });
}

// --- recent errors ------------------------------------------------------------------------
function renderErrors(errors) {
  const body = document.getElementById("errors");
  body.replaceChildren();
  document.getElementById("no-errors").hidden = errors.length > 0;
  for (const e of errors) {
    const row = el("tr");
    row.dataset.requestId = e.request_id;
    const status = el("td", "status " + (e.status >= 500 ? "fail-text" : ""), String(e.status));
    const id = el("td");
    id.append(el("code", "", e.request_id));
    row.append(
      el("td", "muted", e.at.slice(11, 19)),
      status,
      el("td", "", e.route || "(no route)"),
      el("td", "wrap", e.method + " " + e.path),
      el("td", "", e.count > 1 ? "×" + e.count.toLocaleString("en") : ""),
      el("td", "", ms(e.duration_ms)),
      id,
    );
    body.append(row);
  }
}

// --- what the policies show (response validation, consumers) -----------------------------
function renderPanels(panels) {
  const holder = document.getElementById("panels");
  holder.replaceChildren();
  for (const p of panels || []) {
    const section = el("section");
    section.dataset.panel = p.path;
    const title = el("h2", "", p.title + " ");
    title.append(el("span", "muted small", p.note + " · GET " + p.path + " on this listener"));
    section.append(title);
    if (!p.rows.length) {
      section.append(el("p", "muted", "Nothing yet."));
    } else {
      const table = el("table", "errors");
      const head = el("tr");
      for (const c of p.columns) head.append(el("th", "", c));
      const thead = el("thead");
      thead.append(head);
      const body = el("tbody");
      for (const r of p.rows) {
        const row = el("tr");
        for (const v of r) row.append(el("td", "wrap", v === null ? "" : String(v)));
        body.append(row);
      }
      table.append(thead, body);
      const scroll = el("div", "scroll");
      scroll.append(table);
      section.append(scroll);
    }
    holder.append(section);
  }
}

// --- legend ------------------------------------------------------------------------------
function renderLegend(legend) {
  if (!legend) return;
  const body = document.getElementById("legend-rules");
  body.replaceChildren();
  for (const [what, warn, fail] of legend) {
    const row = el("tr");
    row.append(el("td", "", what), el("td", "warn-text", warn), el("td", "fail-text", fail));
    body.append(row);
  }
}

// --- config ------------------------------------------------------------------------------
const RELOAD_TEXT = {
  loaded: r => ` · ${r.routes} routes`,
  restored: () => " · the file on disk matches the serving config again",
  refused: () => " · the previous config keeps serving",
  unreadable: () => " · the previous config keeps serving",
};

function renderConfig(doc) {
  const c = doc.config;
  document.getElementById("config-file").textContent = c.file;
  document.getElementById("config-digest").textContent = c.digest ? "sha256 " + c.digest.slice(0, 12) : "";
  document.getElementById("config-loaded").textContent = c.loaded_at ? `loaded ${c.loaded_at} · ${c.routes} routes` : "";
  document.getElementById("clock").textContent = doc.time + (doc.draining ? " · draining" : "");
  const list = document.getElementById("reloads");
  list.replaceChildren();
  if (!doc.reloads.length) list.append(el("li", "muted", "No reload since the gateway started."));
  doc.reloads.forEach((r, index) => {
    const ok = r.result === "loaded" || r.result === "restored";
    // A refused edit later undone stays in the list, but no longer in red.
    const undone = !ok && doc.reloads.slice(0, index).some(n => n.result === "restored" || n.result === "loaded");
    const item = el("li", ok ? "" : (undone ? "undone" : "fail"));
    item.dataset.result = r.result;
    const pill = el("span", "pill " + (ok ? "ok" : (undone ? "muted" : "fail")), r.result);
    item.append(pill, document.createTextNode(" " + r.at + (RELOAD_TEXT[r.result] || (() => ""))(r)));
    if (r.errors.length) item.append(el("pre", "", r.errors.join("\n")));
    list.append(item);
  });
  const newest = doc.reloads[0];
  const disk = document.getElementById("disk");
  const differs = newest && (newest.result === "refused" || newest.result === "unreadable");
  disk.textContent = differs ? "the file on disk was refused: the previous config serves" : "the file on disk is serving";
  disk.className = "pill " + (differs ? "fail" : "ok");
  disk.dataset.state = differs ? "differs" : "serving";
}

// --- the stream ------------------------------------------------------------------------------
function show(kind, text) {
  const badge = document.getElementById("state");
  badge.textContent = text;
  badge.dataset.state = kind;
  badge.className = "pill " + ({ live: "ok", connecting: "warn", lost: "fail" }[kind] || "muted");
}

function apply(kind, doc) {
  const full = kind === "snapshot";
  renderTotals(doc.totals, full);
  renderRoutes(doc.routes, full);
  renderUpstreams(doc.upstreams, full);
  renderPanels(doc.panels);
  renderErrors(doc.errors);
  renderLegend(doc.legend);
  renderConfig(doc);
  show("live", "live");
}

function askForToken(refused) {
  document.getElementById("board").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").hidden = !refused;
  document.getElementById("token").focus();
  show("lost", "needs token");
}

async function connect() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  try {
    const response = await fetch("events", { headers, cache: "no-store" });
    if (response.status === 401) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      askForToken(Boolean(token));
      return;
    }
    if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
    document.getElementById("login").hidden = true;
    document.getElementById("board").hidden = false;
    state.retry = 1000;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) kind = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) apply(kind, JSON.parse(data));
      }
    }
  } catch (error) {
    console.warn("dashboard stream:", error);
  }
  show("lost", "reconnecting");
  setTimeout(connect, state.retry);
  state.retry = Math.min(state.retry * 2, 15000);
}

document.getElementById("login").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  show("connecting", "connecting");
  connect();
});
connect();
