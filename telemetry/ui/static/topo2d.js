// The 2-D topology: hosts at their positions (x right, y up; one scale for
// the whole lab, so distances on screen are distances in the lab), each
// point-to-point link an edge, each segment a small node joined to its
// hosts, the management network a node joined to every host. Layers switch
// each link, the segments and the management network on and off.
import { linkColor, linkWidth, linkLabel, groupOf, separated } from "./model.js";

// Border colours of partition groups.
const GROUPS = ["#2f6fde", "#e4572e", "#8e44ad", "#17a398", "#f3a712"];

const SIZE = 600; // the lab's extent in model pixels

export class Topo2D {
  constructor(container) {
    this.cy = cytoscape({
      container,
      wheelSensitivity: 0.3,
      // Software rendering is the common case (no GPU on lab servers):
      // draw at one pixel per CSS pixel, and leave labels out when they
      // would be too small to read anyway.
      pixelRatio: 1,
      hideEdgesOnViewport: true,
      style: [
        { selector: "node.host", style: { label: "data(id)", "background-color": "data(color)", "border-width": 3, "border-color": "data(border)", width: 26, height: 26, "text-valign": "top", "text-margin-y": -4, "font-size": 13, "min-zoomed-font-size": 6 } },
        { selector: "node.host.physical", style: { shape: "round-rectangle" } },
        { selector: "node.segment", style: { shape: "diamond", width: 14, height: 14, "background-color": "#555", label: "data(link)", "font-size": 10, "text-valign": "bottom" } },
        { selector: "node.mgmt", style: { shape: "rectangle", width: 18, height: 10, "background-color": "#bbb", label: "mgmt", "font-size": 10, "text-valign": "top" } },
        { selector: "edge", style: { "line-color": "data(color)", width: "data(width)", "line-style": "data(style)", label: "data(label)", "font-size": 10, "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 0.8, "curve-style": "straight", "min-zoomed-font-size": 8 } },
        { selector: "edge.mgmt", style: { "line-color": "#ccc", width: 1, "line-style": "dotted", label: "" } },
        // A conversation's path: a blue glow under the links it uses.
        { selector: "edge.path", style: { "underlay-color": "#2f6fde", "underlay-opacity": 0.35, "underlay-padding": 6 } },
        { selector: "node.pathend", style: { "underlay-color": "#2f6fde", "underlay-opacity": 0.35, "underlay-padding": 8 } },
        { selector: ".off", style: { display: "none" } },
      ],
    });
    this.scale = 1;
    this.placed = false;
    this.layers = { segments: true, mgmt: false, link: {} };
  }

  // setTopology draws a lab's hosts and links anew.
  setTopology(topo) {
    const cy = this.cy;
    cy.elements().remove();
    this.topo = topo;
    const placed = topo.hosts.filter((h) => h.position);
    this.placed = placed.length === topo.hosts.length && placed.length > 0;
    if (this.placed) {
      let ext = 1;
      for (const a of placed) for (const b of placed) {
        ext = Math.max(ext, Math.abs(a.position[0] - b.position[0]), Math.abs(a.position[1] - b.position[1]));
      }
      this.scale = SIZE / ext;
    }
    const els = [];
    for (const h of topo.hosts) {
      els.push({ group: "nodes", data: { id: h.name, kind: h.kind, color: "#9ad", border: "#1d2430" }, classes: `host ${h.kind}`, position: this.toScreen(h.position) });
    }
    for (const l of topo.links) {
      if (l.endpoints.length === 2) {
        els.push({ group: "edges", data: { id: `link:${l.name}`, link: l.name, source: l.endpoints[0], target: l.endpoints[1], color: "#9aa0a6", width: 3, style: "solid", label: l.name }, classes: "link" });
      } else {
        els.push({ group: "nodes", data: { id: `seg:${l.name}`, link: l.name }, classes: "segment" });
        for (const e of l.endpoints) {
          els.push({ group: "edges", data: { id: `link:${l.name}:${e}`, link: l.name, source: `seg:${l.name}`, target: e, color: "#9aa0a6", width: 3, style: "solid", label: "" }, classes: "link segment" });
        }
      }
    }
    els.push({ group: "nodes", data: { id: "mgmt" }, classes: "mgmt" });
    for (const h of topo.hosts) els.push({ group: "edges", data: { id: `mgmt:${h.name}`, source: "mgmt", target: h.name }, classes: "mgmt" });
    cy.add(els);
    // Each link's elements, found once: updates come several times a second.
    this.byLink = new Map();
    cy.edges(".link").forEach((e) => {
      const l = e.data("link");
      if (!this.byLink.has(l)) this.byLink.set(l, cy.collection());
      this.byLink.set(l, this.byLink.get(l).union(e));
    });
    this.last = new Map();
    this.lastGroups = undefined;
    this.lastPaths = undefined;
    if (!this.placed) {
      cy.layout({ name: "cose", animate: false, randomize: false, fit: true, padding: 40 }).run();
    }
    this.placeHelpers();
    this.applyLayers();
    cy.fit(undefined, 40);
  }

  toScreen(pos) {
    if (!pos || !this.placed) return { x: 0, y: 0 };
    return { x: pos[0] * this.scale, y: -pos[1] * this.scale };
  }

  // placeHelpers puts each segment node at its hosts' centre and the
  // management node above everything.
  placeHelpers() {
    const cy = this.cy;
    const hosts = cy.nodes(".host");
    if (hosts.length === 0) return;
    const bb = hosts.boundingBox();
    // Move only what moved: setting a position redraws the graph.
    const put = (n, p) => { const q = n.position(); if (q.x !== p.x || q.y !== p.y) n.position(p); };
    put(cy.$("node.mgmt"), { x: (bb.x1 + bb.x2) / 2, y: bb.y1 - 60 });
    for (const l of this.topo.links) {
      if (l.endpoints.length === 2) continue;
      let x = 0, y = 0;
      for (const e of l.endpoints) { const p = cy.$id(e).position(); x += p.x; y += p.y; }
      put(cy.$id(`seg:${l.name}`), { x: x / l.endpoints.length, y: y / l.endpoints.length + 20 });
    }
  }

  // update redraws hosts and links from a model.
  update(m) {
    const cy = this.cy;
    cy.batch(() => {
      for (const [name, h] of Object.entries(m.hosts)) {
        const n = cy.$id(name);
        if (n.empty()) continue;
        if (n.data("state") !== h.state || n.data("up") !== h.up) {
          n.data({ color: !h.up ? "#bbb" : h.state === "paused" ? "#f2c94c" : "#6fcf97", state: h.state, up: h.up });
        }
        if (this.placed && h.pos) {
          const p = this.toScreen(h.pos), q = n.position();
          if (p.x !== q.x || p.y !== q.y) n.position(p);
        }
      }
      // A partition: hosts bordered by their group's colour, and links
      // between groups drawn cut.
      const g = groupOf(m.groups);
      const groupsKey = JSON.stringify(m.groups || []);
      const regroup = groupsKey !== this.lastGroups;
      this.lastGroups = groupsKey;
      if (regroup) {
        cy.nodes(".host").forEach((n) => n.data("border", n.id() in g ? GROUPS[g[n.id()] % GROUPS.length] : "#1d2430"));
      }
      for (const [name, l] of Object.entries(m.links)) {
        // Touch only what changed: every data() call restyles the element.
        const key = `${l.up} ${l.loss} ${l.rate} ${l.delay}`;
        if (this.last.get(name) === key && !regroup) continue;
        this.last.set(name, key);
        this.edgesOf(name).forEach((e) => {
          const [a, b] = [e.data("source"), e.data("target")];
          // A segment's edge joins a host to the segment: cut when that
          // host is apart from every other host of the segment.
          const cut = e.hasClass("segment")
            ? this.topo.links.find((x) => x.name === name).endpoints.every((h) => h === b || separated(g, b, h))
            : separated(g, a, b);
          e.data({ color: cut ? "#7a1020" : linkColor(l), width: linkWidth(l), style: l.up && !cut ? "solid" : "dashed",
            loss: l.loss, rate: l.rate, up: l.up, partitioned: cut });
          if (e.hasClass("segment")) return;
          e.data("label", linkLabel(name, l) + (cut ? " partitioned" : ""));
        });
        cy.$id(`seg:${name}`).data("label", linkLabel(name, l));
      }
      this.drawPaths(m.paths || []);
      this.placeHelpers();
    });
    if (this.placed && this.offScreen()) this.resize();
  }

  // drawPaths marks the links each conversation uses (on a segment, the
  // edges to the hops on it) and the conversation's two ends.
  drawPaths(paths) {
    const key = JSON.stringify(paths);
    if (key === this.lastPaths) return;
    this.lastPaths = key;
    const cy = this.cy;
    cy.elements(".path, .pathend").removeClass("path pathend");
    for (const p of paths) {
      const hops = new Set(p.hosts);
      for (const name of p.links) {
        this.edgesOf(name).forEach((e) => {
          if (!e.hasClass("segment") || hops.has(e.data("target"))) e.addClass("path");
        });
      }
      if (p.hosts.length) {
        cy.$id(p.hosts[0]).addClass("pathend");
        cy.$id(p.hosts[p.hosts.length - 1]).addClass("pathend");
      }
    }
  }

  // offScreen reports whether a host has moved out of the view (mobility):
  // then the view fits the lab again.
  offScreen() {
    const w = this.cy.width(), h = this.cy.height();
    if (!w || !h) return false;
    return this.cy.nodes(".host").some((n) => {
      const p = n.renderedPosition();
      return p.x < 0 || p.y < 0 || p.x > w || p.y > h;
    });
  }

  edgesOf(name) { return (this.byLink && this.byLink.get(name)) || this.cy.collection(); }

  setLayer(kind, name, on) {
    if (kind === "link") this.layers.link[name] = on;
    else this.layers[kind] = on;
    this.applyLayers();
    this.cy.fit(this.cy.elements(":visible"), 40);
  }

  applyLayers() {
    const cy = this.cy;
    cy.elements().removeClass("off");
    if (!this.layers.mgmt) cy.$(".mgmt").addClass("off");
    if (!this.layers.segments) cy.$(".segment").addClass("off");
    for (const [name, on] of Object.entries(this.layers.link)) {
      if (!on) { this.edgesOf(name).addClass("off"); cy.$id(`seg:${name}`).addClass("off"); }
    }
  }

  resize() {
    this.cy.resize();
    if (this.box) this.fitLab(this.box);
    else this.cy.fit(undefined, 40);
  }

  // fitLab shows a box of lab positions [[x1, y1], [x2, y2]] (a replay
  // fits everywhere the hosts go during the run, so nobody leaves the view).
  fitLab(box) {
    this.box = box;
    if (!this.placed) return this.cy.fit(undefined, 40);
    const cy = this.cy, pad = 50;
    const a = this.toScreen([box[0][0], box[1][1], 0]), b = this.toScreen([box[1][0], box[0][1], 0]);
    const z = Math.min((cy.width() - 2 * pad) / Math.max(b.x - a.x, 1), (cy.height() - 2 * pad) / Math.max(b.y - a.y, 1));
    cy.zoom(z);
    cy.pan({ x: cy.width() / 2 - (z * (a.x + b.x)) / 2, y: cy.height() / 2 - (z * (a.y + b.y)) / 2 });
  }

  // debug tells tests what is drawn: hosts with their model positions,
  // and every link element with its style.
  debug() {
    const cy = this.cy;
    return {
      scale: this.scale,
      placed: this.placed,
      hosts: cy.nodes(".host").map((n) => ({ name: n.id(), x: n.position("x"), y: n.position("y"), visible: n.visible(), state: n.data("state") })),
      links: cy.edges(".link").map((e) => ({ id: e.id(), link: e.data("link"), color: e.data("color"), width: e.data("width"), style: e.data("style"), loss: e.data("loss"), up: e.data("up"), partitioned: !!e.data("partitioned"), path: e.hasClass("path"), visible: e.visible() })),
      mgmt: cy.edges(".mgmt").filter((e) => e.visible()).length,
    };
  }
}
