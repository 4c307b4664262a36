// Charts: the metrics a person picks, on one time axis, with the lab's
// events drawn as marks (uPlot).

const PALETTE = ["#2f6fde", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#29335c", "#a8c256", "#db2763"];

// History keeps the last samples of every series the live stream gives,
// rates computed from counters between two snapshots.
export class History {
  constructor(capacity = 1200) {
    this.capacity = capacity;
    this.t = [];
    this.series = new Map(); // key -> values aligned with t
    this.prev = null;
  }

  add(snap) {
    const now = Date.parse(snap.time) / 1000;
    const vals = new Map();
    const dt = this.prev ? now - this.prev.t : 0;
    const rate = (key, cur) => {
      const p = this.prev && this.prev.counters.get(key);
      return dt > 0 && p !== undefined && cur >= p ? (cur - p) / dt : null;
    };
    const counters = new Map();
    for (const l of snap.links.links || []) {
      for (const d of l.directions || []) {
        const k = `link ${l.name} ${d.from}→`;
        const q = d.quality || {};
        vals.set(`${k} loss %`, q.loss || 0);
        vals.set(`${k} delay ms`, (q.delay_ns || 0) / 1e6);
        vals.set(`${k} rate Mbit/s`, (q.rate_bits || 0) / 1e6);
        const c = d.counters;
        if (!c) continue;
        const drops = c.drop_loss + c.drop_queue + c.drop_down + c.drop_partition + c.drop_error + c.drop_overrun;
        counters.set(`${k} tx`, c.tx_bytes);
        counters.set(`${k} drop`, drops);
        vals.set(`${k} delivered Mbit/s`, mul(rate(`${k} tx`, c.tx_bytes), 8e-6));
        vals.set(`${k} dropped pkt/s`, rate(`${k} drop`, drops));
      }
    }
    for (const d of snap.domains || []) {
      counters.set(`cpu ${d.host}`, d.cpu_seconds);
      vals.set(`host ${d.host} cpu cores`, rate(`cpu ${d.host}`, d.cpu_seconds));
      vals.set(`host ${d.host} memory MiB`, d.memory_bytes / 2 ** 20);
    }
    for (const w of snap.workloads || []) vals.set(`workload ${w.workload}@${w.host} ${w.field}`, w.value);
    if (snap.scenario && snap.scenario.running) vals.set("scenario clock s", snap.scenario.clock_ns / 1e9);
    this.prev = { t: now, counters };

    const n = this.t.length;
    this.t.push(now);
    for (const [k, v] of vals) {
      if (!this.series.has(k)) this.series.set(k, new Array(n).fill(null));
    }
    for (const [k, arr] of this.series) arr.push(vals.has(k) ? vals.get(k) : null);
    // Trim in chunks: shifting a thousand series on every sample costs.
    if (this.t.length > this.capacity + 100) {
      const n = this.t.length - this.capacity;
      this.t.splice(0, n);
      for (const arr of this.series.values()) arr.splice(0, n);
    }
  }

  keys() { return [...this.series.keys()]; }
}

function mul(v, f) { return v === null ? null : v * f; }

// Chart is one uPlot over picked series; marks() gives the events to
// draw ({t, label}), cursor() an optional time to draw a line at.
export class Chart {
  constructor(el, { marks = () => [], cursor = () => null } = {}) {
    this.el = el;
    this.marks = marks;
    this.cursor = cursor;
    this.plot = null;
    this.names = [];
    new ResizeObserver(() => this.plot && this.plot.setSize(this.size())).observe(el);
  }

  size() { return { width: Math.max(200, this.el.clientWidth), height: Math.max(120, this.el.clientHeight - 40) }; }

  // set draws names over xs (seconds since the epoch) with ys.
  set(names, xs, ys) {
    if (!sameNames(names, this.names) || !this.plot) {
      this.names = names.slice();
      if (this.plot) this.plot.destroy();
      const opts = {
        ...this.size(),
        scales: { x: { time: true } },
        series: [{}, ...names.map((n, i) => ({ label: n, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true }))],
        axes: [{}, { size: 60 }],
        legend: { live: false },
        hooks: { draw: [(u) => this.drawMarks(u)] },
      };
      this.plot = new uPlot(opts, [xs, ...ys], this.el);
      return;
    }
    this.plot.setData([xs, ...ys]);
  }

  redraw() { if (this.plot) this.plot.redraw(false); }

  drawMarks(u) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const [x0, x1] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.font = `${11 * devicePixelRatio}px sans-serif`;
    ctx.textAlign = "left"; // uPlot leaves its own alignment behind
    // Labels go in the first of a few rows where they do not overlap the
    // one before (marks come in time order); a mark with no room keeps its line.
    const rows = [];
    for (const m of this.marks()) {
      if (m.t < x0 || m.t > x1) continue;
      const x = Math.round(u.valToPos(m.t, "x", true));
      ctx.strokeStyle = "rgba(200, 60, 40, 0.7)";
      ctx.setLineDash([4, 4]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      let r = rows.findIndex((end) => end < x);
      if (r < 0) r = rows.length;
      if (r >= 4) continue;
      rows[r] = x + 3 + ctx.measureText(m.label).width + 6 * devicePixelRatio;
      ctx.fillStyle = "rgba(160, 40, 30, 0.9)";
      ctx.fillText(m.label, x + 3, top + (12 + 13 * r) * devicePixelRatio);
    }
    const c = this.cursor();
    if (c !== null && c >= x0 && c <= x1) {
      const x = Math.round(u.valToPos(c, "x", true));
      ctx.setLineDash([]);
      ctx.strokeStyle = "#1d2430";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    }
    ctx.restore();
  }
}

function sameNames(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }
