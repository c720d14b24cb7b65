// The gateway's dashboard: one SSE stream (GET events), read with fetch so that
// the admin token can travel in an Authorization header. Everything is drawn
// here with DOM nodes and SVG paths (text set with textContent only); nothing
// is loaded from anywhere else.
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

function routeLevels(r) {
  const levels = {};
  if (r.rps > 0) {
    if (r.r5xx > 0) levels.r5xx = r.r5xx / r.rps >= 0.05 ? "fail" : "warn";
    if (r.r4xx / r.rps >= 0.5) levels.r4xx = "warn";
    if (r.r429 > 0) levels.r429 = r.r429 / r.rps >= 0.5 ? "fail" : "warn";
    if (r.p99 !== null && r.timeout_ms) {
      if (r.p99 >= 0.8 * r.timeout_ms) levels.p99 = "fail";
      else if (r.p99 >= 0.5 * r.timeout_ms) levels.p99 = "warn";
    }
  }
  return levels;
}

function worst(levels, busy) {
  const all = Object.values(levels);
  if (all.includes("fail")) return "fail";
  if (all.includes("warn")) return "warn";
  return busy ? "ok" : "idle";
}

function routeCard(r) {
  const card = el("article", "card");
  card.dataset.route = r.name;
  const head = el("div", "head");
  head.append(el("span", "name", r.name));
  head.append(el("span", "path", (r.methods.length ? r.methods.join(" ") + " " : "") + r.path));
  head.append(el("span", "kind", r.kind));
  card.append(head);
  const { grid, parts } = metricGrid(ROUTE_METRICS);
  card.append(grid);
  return { card, parts, points: [] };
}

// A grid of labelled numbers, each over its chart: parts[key] = {box, value, chart}.
function metricGrid(metrics) {
  const grid = el("div", "metrics");
  const parts = {};
  for (const [key, label] of metrics) {
    const box = el("div", "metric");
    box.dataset.metric = key;
    const value = el("div", "value", "–");
    const chart = sparkline();
    box.append(el("div", "label", label), value, chart);
    grid.append(box);
    parts[key] = { box, value, chart };
  }
  return { grid, parts };
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
    const levels = routeLevels(r);
    for (const [key, , column, format] of ROUTE_METRICS) {
      const part = view.parts[key];
      part.value.textContent = format(r[key]);
      part.box.className = "metric" + (levels[key] ? " " + levels[key] : "");
      draw(part.chart, view.points.map(p => p[column]));
    }
    view.card.className = "card " + worst(levels, r.rps > 0 || r.in_flight > 0);
  });
}

// --- upstreams ----------------------------------------------------------------------------
// A point: [second, calls, failures]
const CIRCUIT = { closed: "ok", "half-open": "warn", open: "fail", none: "" };

function upstreamCard(u) {
  const card = el("article", "card");
  card.dataset.upstream = u.name;
  const head = el("div", "head");
  const circuit = el("span", "pill");
  circuit.dataset.circuit = "";
  head.append(el("span", "name", u.name), el("span", "path", u.url), circuit);
  circuit.style.marginLeft = "auto";
  const { grid, parts } = metricGrid([["cps", "calls/s"], ["fps", "failures/s"]]);
  grid.style.gridTemplateColumns = "1fr 1fr";
  card.append(head, grid);
  return { card, circuit, parts, points: [] };
}

function renderUpstreams(upstreams, full) {
  renderCards("upstreams", upstreams, state.upstreams, upstreamCard, (view, u) => {
    view.points = mergePoints(view.points, u.points, full);
    const failing = u.fps > 0 ? (u.cps > 0 && u.fps / u.cps < 0.2 ? "warn" : "fail") : "";
    const circuitLevel = CIRCUIT[u.circuit] || "";
    view.circuit.textContent = u.circuit === "none" ? "no breaker" : "circuit " + u.circuit;
    view.circuit.className = "pill " + circuitLevel;
    view.circuit.dataset.circuit = u.circuit;
    view.parts.cps.value.textContent = rate(u.cps);
    view.parts.fps.value.textContent = rate(u.fps);
    view.parts.fps.box.className = "metric" + (failing ? " " + failing : "");
    draw(view.parts.cps.chart, view.points.map(p => p[1]));
    draw(view.parts.fps.chart, view.points.map(p => p[2]));
    const levels = { failing, circuit: circuitLevel === "ok" ? "" : circuitLevel };
    view.card.className = "card " + worst(levels, u.cps > 0);
  });
}

// --- config ------------------------------------------------------------------------------
function renderConfig(doc) {
  const c = doc.config;
  document.getElementById("config-file").textContent = c.file;
  document.getElementById("config-digest").textContent = c.digest ? "sha256 " + c.digest.slice(0, 12) : "";
  document.getElementById("config-loaded").textContent = c.loaded_at ? `loaded ${c.loaded_at} · ${c.routes} routes` : "";
  document.getElementById("clock").textContent = doc.time + (doc.draining ? " · draining" : "");
  const list = document.getElementById("reloads");
  list.replaceChildren();
  if (!doc.reloads.length) list.append(el("li", "muted", "No reload since the gateway started."));
  for (const r of doc.reloads) {
    const ok = r.result === "loaded";
    const item = el("li", ok ? "" : "fail");
    item.dataset.result = r.result;
    const pill = el("span", "pill " + (ok ? "ok" : "fail"), ok ? "loaded" : r.result);
    item.append(pill, document.createTextNode(" " + r.at + (ok ? ` · ${r.routes} routes` : " · the previous config keeps serving")));
    if (r.errors.length) item.append(el("pre", "", r.errors.join("\n")));
    list.append(item);
  }
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
  renderRoutes(doc.routes, full);
  renderUpstreams(doc.upstreams, full);
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
