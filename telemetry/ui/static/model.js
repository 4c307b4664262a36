// The view model both topology views draw: a lab's hosts and links at one
// moment, from a live snapshot or from a recorded run at a replay time.

// linkView sums up a link's directions: the worst of them is what a person
// needs to see (highest loss, lowest rate, longest delay).
export function linkView(ls, groups) {
  const dirs = ls.directions || [];
  let loss = 0, rate = 0, delay = 0, allDown = dirs.length > 0;
  for (const d of dirs) {
    const q = d.quality || {};
    loss = Math.max(loss, q.loss || 0);
    if (q.rate_bits && (rate === 0 || q.rate_bits < rate)) rate = q.rate_bits;
    delay = Math.max(delay, q.delay_ns || 0);
    if (!q.down) allDown = false;
  }
  return { up: ls.up && !allDown, loss, rate, delay };
}

// fromSnapshot builds the model of a live snapshot.
export function fromSnapshot(snap) {
  const m = { hosts: {}, links: {}, groups: snap.links.groups || [], paths: snap.paths || [] };
  for (const h of snap.hosts || []) m.hosts[h.name] = { pos: h.position, state: h.state, up: h.up, kind: h.kind };
  for (const l of snap.links.links || []) m.links[l.name] = linkView(l, m.groups);
  return m;
}

// valueAt is a recorded series' value at t: the last sample at or before t.
export function valueAt(series, t) {
  let v = undefined;
  for (let i = 0; i < series.t.length && series.t[i] <= t; i++) v = series.v[i];
  return v;
}

// fromRun builds the model of a recorded run at time t (seconds since its
// start) from its series, named as on /metrics.
export function fromRun(run, t) {
  const m = { hosts: {}, links: {}, groups: [], paths: pathsAt(run.paths, t) };
  for (const h of run.topology.hosts) {
    m.hosts[h.name] = { pos: h.position ? [...h.position] : null, state: h.state, up: h.up, kind: h.kind };
  }
  for (const l of run.topology.links) m.links[l.name] = { up: true, loss: 0, rate: 0, delay: 0 };
  const axis = { x: 0, y: 1, z: 2 };
  for (const s of run.series) {
    const v = valueAt(s, t);
    if (v === undefined) continue;
    const lb = s.labels || {};
    const link = m.links[lb.link];
    switch (s.name) {
      case "forgelab_host_position_meters": {
        const h = m.hosts[lb.host];
        if (h) { h.pos = h.pos || [0, 0, 0]; h.pos[axis[lb.axis]] = v; }
        break;
      }
      case "forgelab_host_up":
        if (m.hosts[lb.host]) m.hosts[lb.host].up = v > 0;
        break;
      case "forgelab_link_up":
        if (link) link.up = v > 0;
        break;
      case "forgelab_link_loss_ratio":
        if (link) link.loss = Math.max(link.loss, v * 100);
        break;
      case "forgelab_link_rate_bytes_per_second": {
        const bits = v * 8; // the page shows bit/s
        if (link && bits > 0 && (link.rate === 0 || bits < link.rate)) link.rate = bits;
        break;
      }
      case "forgelab_link_delay_seconds":
        if (link) link.delay = Math.max(link.delay, v * 1e9);
        break;
    }
  }
  return m;
}

// pathsAt are a run's conversations' routes at t: each one's last entry
// at or before t (entries come sorted by time); one that names no hosts
// has no route then.
export function pathsAt(paths, t) {
  const now = new Map();
  for (const p of paths || []) if (p.t <= t) now.set(p.name, p);
  return [...now.values()].filter((p) => p.hosts && p.hosts.length > 1);
}

// groupOf maps each host of a partition to its group's index.
export function groupOf(groups) {
  const g = {};
  (groups || []).forEach((hosts, i) => { for (const h of hosts) g[h] = i; });
  return g;
}

// separated reports whether a partition keeps hosts a and b apart (hosts
// in no group are not affected), as netfabric.Separated.
export function separated(g, a, b) {
  return a in g && b in g && g[a] !== g[b];
}

// Colours and widths by quality: green for a clean link through red at 20 %
// loss or more; wider for faster links; grey when down.
export function linkColor(l) {
  if (!l || !l.up) return "#9aa0a6";
  const bad = Math.min((l.loss || 0) / 20, 1);
  return `hsl(${Math.round(120 * (1 - bad))}, 70%, 42%)`;
}

export function linkWidth(l) {
  if (!l || !l.rate) return 6; // unlimited
  return Math.max(1.5, Math.min(6, 1 + Math.log10(l.rate / 1e5)));
}

export function linkLabel(name, l) {
  if (!l) return name;
  const parts = [name];
  if (!l.up) parts.push("down");
  if (l.loss) parts.push(`${+l.loss.toFixed(2)}%`);
  if (l.rate) parts.push(fmtRate(l.rate));
  if (l.delay) parts.push(`${+(l.delay / 1e6).toFixed(1)}ms`);
  return parts.join(" ");
}

export function fmtRate(b) {
  if (b >= 1e9) return `${+(b / 1e9).toFixed(2)}Gbit`;
  if (b >= 1e6) return `${+(b / 1e6).toFixed(2)}Mbit`;
  return `${+(b / 1e3).toFixed(1)}kbit`;
}
