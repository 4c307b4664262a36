// The 3-D topology: the same hosts and links in space (three.js through
// 3d-force-graph). Hosts with positions are pinned there; a lab without
// positions is laid out by the force simulation. It renders only while
// shown, to leave the CPU to the labs.
import { linkColor, linkWidth, linkLabel } from "./model.js";

export class Topo3D {
  constructor(container) {
    this.container = container;
    this.graph = null;
    this.model = null;
    this.scale = 1;
  }

  ensure() {
    if (this.graph) return;
    // preserveDrawingBuffer: screenshots read the canvas after a frame.
    this.graph = new ForceGraph3D(this.container, { controlType: "orbit", rendererConfig: { preserveDrawingBuffer: true, antialias: true } })
      .backgroundColor("#10151f")
      .nodeLabel((n) => `${n.id} (${n.kind})`)
      .nodeColor((n) => (n.segment ? "#777" : n.up === false ? "#999" : "#6fcf97"))
      .nodeRelSize(5)
      .nodeVal((n) => (n.segment ? 0.5 : 4))
      .linkColor((l) => linkColor(this.linkState(l.link)))
      .linkWidth((l) => linkWidth(this.linkState(l.link)) / 2)
      .linkLabel((l) => linkLabel(l.link, this.linkState(l.link)))
      .linkOpacity(0.9)
      .showNavInfo(false);
  }

  linkState(name) { return this.model && this.model.links[name]; }

  setTopology(topo) {
    this.topo = topo;
    // Built when first shown: a hidden WebGL scene still costs frames.
    if (!this.shown) return;
    this.build();
  }

  build() {
    const topo = this.topo;
    this.ensure();
    const placed = topo.hosts.every((h) => h.position) && topo.hosts.length > 0;
    let ext = 1;
    for (const a of topo.hosts) for (const b of topo.hosts) {
      if (!placed) break;
      for (let i = 0; i < 3; i++) ext = Math.max(ext, Math.abs(a.position[i] - b.position[i]));
    }
    this.placed = placed;
    this.scale = 200 / ext;
    const nodes = topo.hosts.map((h) => this.pin({ id: h.name, kind: h.kind }, h.position));
    const links = [];
    for (const l of topo.links) {
      if (l.endpoints.length === 2) {
        links.push({ source: l.endpoints[0], target: l.endpoints[1], link: l.name });
      } else {
        // A segment is a small node at its hosts' centre.
        const ps = l.endpoints.map((e) => topo.hosts.find((h) => h.name === e)).filter((h) => h && h.position).map((h) => h.position);
        const mid = ps.length === l.endpoints.length ? [0, 1, 2].map((i) => ps.reduce((a, p) => a + p[i], 0) / ps.length) : null;
        nodes.push(this.pin({ id: `seg:${l.name}`, segment: true, kind: "segment", link: l.name }, mid));
        for (const e of l.endpoints) links.push({ source: `seg:${l.name}`, target: e, link: l.name });
      }
    }
    this.graph.cooldownTicks(placed ? 0 : 200).graphData({ nodes, links });
    this.builtFor = topo;
    setTimeout(() => this.fit(), 300);
  }

  // fit looks at the whole lab from the front and a little below, so the
  // third dimension shows even in a flat lab.
  fit(tries = 10) {
    const bb = this.graph && this.graph.getGraphBbox();
    if (!bb || !isFinite(bb.x[0])) {
      // Not drawn yet: the first frame comes after the data.
      if (tries > 0) setTimeout(() => this.fit(tries - 1), 200);
      return;
    }
    const c = { x: (bb.x[0] + bb.x[1]) / 2, y: (bb.y[0] + bb.y[1]) / 2, z: (bb.z[0] + bb.z[1]) / 2 };
    // The distance at which the lab's box fills the view, by the camera's
    // field of view and the canvas' shape, with a margin.
    const cam = this.graph.camera();
    const tan = Math.tan((cam.fov * Math.PI) / 360);
    const w = bb.x[1] - bb.x[0], h = Math.max(bb.y[1] - bb.y[0], bb.z[1] - bb.z[0]);
    const d = 1.3 * Math.max(h / (2 * tan), w / (2 * tan * cam.aspect), 40) + (bb.z[1] - bb.z[0]) / 2;
    this.graph.cameraPosition({ x: c.x, y: c.y - 0.5 * d, z: c.z + 0.87 * d }, c, 0);
    this.fitted = true;
  }

  pin(n, pos) {
    if (this.placed && pos) {
      // three.js has y up like the lab; z toward the viewer.
      n.fx = n.x = pos[0] * this.scale;
      n.fy = n.y = pos[1] * this.scale;
      n.fz = n.z = pos[2] * this.scale;
    }
    return n;
  }

  update(m) {
    this.model = m;
    if (!this.graph || !this.shown) return;
    const { nodes } = this.graph.graphData();
    let moved = false;
    for (const n of nodes) {
      const h = m.hosts[n.id];
      if (!h) continue;
      n.up = h.up;
      if (this.placed && h.pos && (n.fx !== h.pos[0] * this.scale || n.fy !== h.pos[1] * this.scale || n.fz !== h.pos[2] * this.scale)) {
        this.pin(n, h.pos);
        moved = true;
      }
    }
    if (moved) {
      for (const n of nodes) {
        if (!n.segment) continue;
        const l = this.topo.links.find((x) => x.name === n.link);
        const ps = l.endpoints.map((e) => m.hosts[e] && m.hosts[e].pos).filter(Boolean);
        if (ps.length === l.endpoints.length) this.pin(n, [0, 1, 2].map((i) => ps.reduce((a, p) => a + p[i], 0) / ps.length));
      }
    }
    // Re-evaluate the accessors: colours and widths follow the quality.
    this.graph.linkColor(this.graph.linkColor()).linkWidth(this.graph.linkWidth()).nodeColor(this.graph.nodeColor());
    if (moved) this.graph.refresh();
  }

  show(on) {
    if (on) {
      const first = !this.shown;
      this.shown = true;
      this.ensure();
      this.graph.width(this.container.clientWidth).height(this.container.clientHeight);
      this.graph.resumeAnimation();
      if (this.topo && (first || this.builtFor !== this.topo)) this.build();
    } else {
      this.shown = false;
      if (this.graph) this.graph.pauseAnimation();
    }
  }

  debug() {
    if (!this.graph) return { nodes: 0, links: 0 };
    const { nodes, links } = this.graph.graphData();
    return { nodes: nodes.filter((n) => !n.segment).length, links: links.length, linkNames: [...new Set(links.map((l) => l.link))], fitted: !!this.fitted, camera: this.graph.cameraPosition() };
  }
}
