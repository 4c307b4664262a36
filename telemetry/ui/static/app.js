// forgelab serve's page: picks a lab, follows its live stream, draws it in
// 2-D, 3-D and charts, sends changes, and replays recorded runs.
import { get, post, enc } from "./api.js";
import { fromSnapshot, fromRun } from "./model.js";
import { Topo2D } from "./topo2d.js";
import { Topo3D } from "./topo3d.js";
import { History, Chart } from "./charts.js";

const $ = (sel) => document.querySelector(sel);

const state = { lab: null, topo: null, source: null, model: null, events: [], snapshots: 0, view: "2d", run: null, replayT: 0 };
const topo2d = new Topo2D($("#view-2d"));
const topo3d = new Topo3D($("#view-3d"));
const history = new History();
// marksOf are the events worth a mark on a chart: not the link.set a
// quality model makes several times a second (the link's series show it),
// and a marker by its label.
function marksOf(events) {
  return events.filter((e) => !(e.source === "scenario" && e.action === "link.set")).map((e) => {
    const m = e.action === "marker" && /"(.*)"/.exec((e.args && e.args.action) || "");
    return { t: Date.parse(e.time) / 1000, label: m ? m[1] : e.action };
  });
}
const chart = new Chart($("#chart"), { marks: () => marksOf(state.events) });
const replay2d = new Topo2D($("#replay-2d"));
const replayChart = new Chart($("#replay-chart"), {
  marks: () => (state.run ? marksOf(state.run.events) : []),
  cursor: () => (state.run ? runStart() + state.replayT : null),
});

// window.forgelab lets tests (and curious people) see what is drawn.
window.forgelab = {
  ready: false,
  get lab() { return state.lab; },
  get snapshots() { return state.snapshots; },
  get model() { return state.model; },
  topo2d: () => topo2d.debug(),
  topo3d: () => topo3d.debug(),
  chart: () => ({ series: chart.names, points: history.t.length }),
  replay: () => ({ run: state.run && state.run.id, loading: opening !== 0, t: state.replayT, topo: replay2d.debug(), series: replayChart.names,
    paths: state.run ? fromRun(state.run, state.replayT).paths : [] }),
  show: (page, view) => { showPage(page); if (view) showView(view); },
};

function status(text, bad = false) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

function message(text, bad = false) {
  const m = $("#message");
  m.textContent = text;
  m.classList.toggle("bad", bad);
}

// --- labs come and go -------------------------------------------------------

async function refreshLabs() {
  let labs;
  try {
    labs = await get("labs");
  } catch (e) {
    status(`serve unreachable: ${e.message}`, true);
    return;
  }
  const sel = $("#lab");
  const names = labs.map((l) => l.name);
  if (sel.options.length !== names.length || names.some((n, i) => sel.options[i].value !== n)) {
    sel.replaceChildren(...labs.map((l) => new Option(`${l.name} (${l.phase})`, l.name)));
  }
  if (!names.includes(state.lab)) {
    const want = new URLSearchParams(location.search).get("lab");
    connect(names.includes(want) ? want : names[0] || null);
  }
  sel.value = state.lab || "";
}

function connect(lab) {
  if (state.source) state.source.close();
  state.source = null;
  state.lab = lab;
  if (!lab) {
    status("no labs: forgelab create LAB.toml makes one");
    return;
  }
  status(`connecting to ${lab}`);
  const es = new EventSource(`api/v1/labs/${enc(lab)}/stream`);
  state.source = es;
  es.addEventListener("topology", (ev) => setTopology(JSON.parse(ev.data)));
  es.addEventListener("snapshot", (ev) => onSnapshot(JSON.parse(ev.data)));
  es.addEventListener("events", (ev) => { for (const e of JSON.parse(ev.data).events) addEvent(e); });
  es.addEventListener("error", (ev) => {
    if (ev.data) status(`${lab}: ${JSON.parse(ev.data).error}`, true);
    else if (es.readyState !== EventSource.CLOSED) status(`${lab}: reconnecting`, true);
  });
  es.addEventListener("gone", () => {
    es.close();
    status(`lab ${lab} is gone`, true);
    state.lab = null;
    refreshLabs();
  });
}

// --- live --------------------------------------------------------------------

function setTopology(topo) {
  state.topo = topo;
  state.events = [];
  $("#events").replaceChildren();
  topo2d.setTopology(topo);
  topo3d.setTopology(topo);
  if (state.view === "3d") topo3d.show(true);
  fillControls(topo);
  fillLayers(topo);
}

// timing keeps how long each part of drawing a snapshot took (ms, summed),
// for the benchmark and for anyone wondering why a page is slow.
const timing = {};
function timed(name, f) {
  const t0 = performance.now();
  f();
  timing[name] = (timing[name] || 0) + performance.now() - t0;
}
window.forgelab.timing = timing;

function onSnapshot(snap) {
  state.snapshots++;
  timed("model", () => { state.model = fromSnapshot(snap); });
  timed("topo2d", () => topo2d.update(state.model));
  timed("topo3d", () => topo3d.update(state.model));
  timed("history", () => history.add(snap));
  timed("events", () => { for (const e of snap.events || []) addEvent(e); });
  timed("serieslist", updateSeriesList);
  timed("chart", drawChart);
  $("#paths").textContent = (snap.paths || []).map((p) => `${p.name}: ${p.hosts.join(" → ")}`).join("; ");
  const sc = snap.scenario || {};
  $("#scenario-clock").textContent = sc.running ? `${sc.name || ""} ${(sc.clock_ns / 1e9).toFixed(1)} s` : "";
  status(`${state.lab} · live · ${new Date(snap.time).toLocaleTimeString()}`);
  window.forgelab.ready = true;
}

function addEvent(e) {
  state.events.push(e);
  if (state.events.length > 500) state.events.shift();
  const li = document.createElement("li");
  const args = e.args ? " " + fmtArgs(e.args) : "";
  li.textContent = `${new Date(e.time).toLocaleTimeString()} [${e.source || "?"}] ${e.action}${args}${e.error ? " — " + e.error : ""}`;
  if (e.result === "error") li.className = "error";
  const list = $("#events");
  list.prepend(li);
  while (list.children.length > 300) list.lastChild.remove();
}

// fmtArgs writes an event's arguments as k=v, one level of nesting
// flattened and empty values left out: "link=ab from=a loss=25".
function fmtArgs(args) {
  const out = [];
  const walk = (o) => {
    for (const [k, v] of Object.entries(o)) {
      if (v === null || v === "" || v === false || v === undefined) continue;
      if (typeof v === "object" && !Array.isArray(v)) walk(v);
      else out.push(`${k}=${Array.isArray(v) ? JSON.stringify(v) : v}`);
    }
  };
  walk(args);
  return out.join(" ");
}

function fillControls(topo) {
  const links = topo.links.map((l) => l.name);
  const q = $("#quality");
  q.link.replaceChildren(...links.map((n) => new Option(n, n)));
  const fillFrom = () => {
    const l = topo.links.find((x) => x.name === q.link.value);
    q.from.replaceChildren(new Option("every direction", ""), ...(l ? l.endpoints : []).map((h) => new Option(h, h)));
  };
  q.link.onchange = fillFrom;
  fillFrom();
  $("#host").host.replaceChildren(...topo.hosts.filter((h) => h.kind === "vm").map((h) => new Option(h.name, h.name)));
}

function fillLayers(topo) {
  const box = $("#layers");
  box.replaceChildren();
  const add = (label, on, f, id) => {
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox";
    c.checked = on;
    c.dataset.layer = id;
    c.onchange = () => f(c.checked);
    l.append(c, " " + label);
    box.append(l);
  };
  for (const l of topo.links) add(l.name, true, (on) => topo2d.setLayer("link", l.name, on), `link:${l.name}`);
  add("segments", topo2d.layers.segments, (on) => topo2d.setLayer("segments", null, on), "segments");
  add(`management ${topo.mgmt.prefix || ""}`, topo2d.layers.mgmt, (on) => topo2d.setLayer("mgmt", null, on), "mgmt");
}

// --- charts ------------------------------------------------------------------

function updateSeriesList() {
  const sel = $("#series");
  const keys = history.keys();
  if (sel.options.length === keys.length) return;
  const chosen = new Set([...sel.selectedOptions].map((o) => o.value));
  if (chosen.size === 0) {
    for (const k of keys) if (/ loss %$| delivered Mbit\/s$/.test(k) && chosen.size < 4) chosen.add(k);
  }
  sel.replaceChildren(...keys.map((k) => { const o = new Option(k, k); o.selected = chosen.has(k); return o; }));
}

function drawChart() {
  const names = [...$("#series").selectedOptions].map((o) => o.value);
  chart.set(names, history.t, names.map((n) => history.series.get(n)));
}

$("#series").onchange = drawChart;

// --- controls ----------------------------------------------------------------

async function change(what, f) {
  try {
    await f();
    message(`${what}: done`);
  } catch (e) {
    message(`${what}: ${e.message}`, true);
  }
}

$("#quality").onsubmit = (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = { from: f.from.value };
  const num = (input, k, scale) => { if (input.value !== "") body[k] = Math.round(Number(input.value) * scale * 1e6) / 1e6; };
  num(f.rate, "rate_bits", 1e6);
  num(f.delay, "delay_ns", 1e6);
  num(f.jitter, "jitter_ns", 1e6);
  num(f.loss, "loss", 1);
  for (const k of ["rate_bits", "delay_ns", "jitter_ns"]) if (k in body) body[k] = Math.round(body[k]);
  change(`link ${f.link.value}`, () => post(`labs/${enc(state.lab)}/links/${enc(f.link.value)}/quality`, body));
};
$("#cut-link").onclick = () => change(`cut ${$("#quality").link.value}`, () =>
  post(`labs/${enc(state.lab)}/links/${enc($("#quality").link.value)}/state`, { up: false }));
$("#restore-link").onclick = () => change(`restore ${$("#quality").link.value}`, () =>
  post(`labs/${enc(state.lab)}/links/${enc($("#quality").link.value)}/state`, { up: true }));
$("#partition").onsubmit = (ev) => {
  ev.preventDefault();
  const groups = ev.target.groups.value.split("|").map((g) => g.split(",").map((h) => h.trim()).filter(Boolean)).filter((g) => g.length);
  change("partition", () => post(`labs/${enc(state.lab)}/partition`, { groups }));
};
$("#heal").onclick = () => change("heal", () => post(`labs/${enc(state.lab)}/heal`));
for (const b of document.querySelectorAll("#host button")) {
  b.onclick = () => {
    const host = $("#host").host.value;
    change(`${b.dataset.action} ${host}`, () => post(`labs/${enc(state.lab)}/hosts/${enc(host)}/action`, { action: b.dataset.action }));
  };
}
$("#scenario").onsubmit = (ev) => {
  ev.preventDefault();
  change("scenario start", () => post(`labs/${enc(state.lab)}/scenario/start`, { scenario: ev.target.scenario.value }));
};
$("#scenario-stop").onclick = () => change("scenario stop", () => post(`labs/${enc(state.lab)}/scenario/stop`));
$("#lab").onchange = (ev) => connect(ev.target.value);

// --- pages and views ---------------------------------------------------------

function showPage(page) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("on", b.dataset.page === page);
  $("#page-live").hidden = page !== "live";
  $("#page-runs").hidden = page !== "runs";
  topo3d.show(page === "live" && state.view === "3d");
  if (page === "runs") { replay2d.resize(); loadRuns(); }
  else topo2d.resize();
}

function showView(view) {
  state.view = view;
  for (const b of document.querySelectorAll(".viewbar button")) b.classList.toggle("on", b.dataset.view === view);
  $("#view-2d").hidden = view !== "2d";
  $("#view-3d").hidden = view !== "3d";
  topo3d.show(view === "3d");
  if (view === "2d") topo2d.resize();
}

for (const b of document.querySelectorAll("nav button")) b.onclick = () => showPage(b.dataset.page);
for (const b of document.querySelectorAll(".viewbar button")) b.onclick = () => showView(b.dataset.view);

// --- recorded runs -----------------------------------------------------------

function runStart() { return Date.parse(state.run.start) / 1000; }

// runLength is a run's length in seconds: to its end, or to its last
// sample while it still records.
function runLength(run) {
  if (run.end) return (Date.parse(run.end) - Date.parse(run.start)) / 1000;
  return Math.max(0, ...run.series.map((s) => (s.t.length ? s.t[s.t.length - 1] : 0)));
}

async function loadRuns() {
  let runs;
  try {
    runs = await get("runs");
  } catch (e) {
    message(`runs: ${e.message}`, true);
    return;
  }
  const list = $("#runs");
  list.replaceChildren(...runs.map((r) => {
    const li = document.createElement("li");
    li.dataset.run = `${r.lab}/${r.id}`;
    const secs = r.end ? `${((Date.parse(r.end) - Date.parse(r.start)) / 1000).toFixed(0)} s` : r.status;
    li.textContent = `${r.lab} ${r.id} ${r.scenario || ""} ${r.variant || ""} (${secs})`;
    li.onclick = () => openRun(r.lab, r.id);
    return li;
  }));
  if (!state.run && runs.length) openRun(runs[0].lab, runs[0].id);
}

// openRun loads a run for the replay; when runs are opened faster than
// they load, only the last one opened is shown.
let opening = 0;
async function openRun(lab, id) {
  const mine = ++opening;
  let run;
  try {
    run = await get(`runs/${enc(lab)}/${enc(id)}`);
  } finally {
    if (mine !== opening) return;
    opening = 0;
  }
  state.run = run;
  for (const li of document.querySelectorAll("#runs li")) li.classList.toggle("on", li.dataset.run === `${lab}/${id}`);
  // A run without a plan names no positions: take each host's first
  // recorded one, so the replay still draws the lab where it was.
  const pos = run.series.filter((x) => x.name === "forgelab_host_position_meters" && x.t.length);
  if (pos.length) {
    const m0 = fromRun(run, Math.max(...pos.map((x) => x.t[0])));
    for (const h of run.topology.hosts) if (!h.position && m0.hosts[h.name].pos) h.position = m0.hosts[h.name].pos;
  }
  replay2d.setTopology(run.topology);
  replay2d.fitLab(runBox(run));
  const slider = $("#replay-time");
  slider.max = runLength(run);
  slider.disabled = false;
  slider.value = 0;
  const sel = $("#replay-series");
  const key = (s) => `${s.name}{${Object.entries(s.labels || {}).filter(([k]) => k !== "lab").map(([k, v]) => `${k}=${v}`).join(",")}}`;
  sel.replaceChildren(...run.series.map((s, i) => {
    const o = new Option(key(s), i);
    o.selected = s.name.startsWith("forgelab_link_loss_ratio");
    return o;
  }));
  sel.onchange = () => drawReplayChart();
  drawReplayChart();
  replayAt(0);
}

// runBox is the box of every position a run's hosts take.
function runBox(run) {
  const xs = [], ys = [];
  for (const h of run.topology.hosts) if (h.position) { xs.push(h.position[0]); ys.push(h.position[1]); }
  for (const s of run.series) {
    if (s.name !== "forgelab_host_position_meters") continue;
    if (s.labels.axis === "x") xs.push(...s.v);
    if (s.labels.axis === "y") ys.push(...s.v);
  }
  return [[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]];
}

function drawReplayChart() {
  const run = state.run;
  const picked = [...$("#replay-series").selectedOptions].map((o) => run.series[+o.value]);
  // One time axis: the union of the picked series' sample times.
  const ts = [...new Set(picked.flatMap((s) => s.t))].sort((a, b) => a - b);
  const ys = picked.map((s) => {
    const at = new Map(s.t.map((t, i) => [t, s.v[i]]));
    return ts.map((t) => (at.has(t) ? at.get(t) : null));
  });
  replayChart.set(picked.map((s, i) => $("#replay-series").selectedOptions[i].text), ts.map((t) => runStart() + t), ys);
}

function replayAt(t) {
  state.replayT = t;
  const m = fromRun(state.run, t);
  replay2d.update(m);
  const paths = m.paths.map((p) => `${p.name}: ${p.hosts.join(" → ")}`).join("; ");
  $("#replay-label").textContent = `${t.toFixed(1)} s of ${runLength(state.run).toFixed(0)} s${paths ? " · " + paths : ""}`;
  replayChart.redraw();
}

$("#replay-time").oninput = (ev) => replayAt(Number(ev.target.value));
window.forgelab.replayAt = (t) => { $("#replay-time").value = t; replayAt(t); };

refreshLabs();
setInterval(refreshLabs, 3000);
