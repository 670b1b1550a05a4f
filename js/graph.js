// A run's task graph, drawn by task type: one box per type (its done/total and
// failures), an arrow from each type to the types that use its results. By type,
// so a sweep of 10,000 tasks is still a picture one can read. SVG, no library.

import { h, svg } from "./common.js";

const BOX = { w: 168, h: 42 };
const GAP = { x: 56, y: 14 };
const PAD = 6;


/** Each type's column: 0 for types that need no other, else one past the deepest need. */
export function depths(types) {
  const after = new Map(types.map((t) => [t.type, t.after ?? []]));
  const depth = new Map();
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // a cycle cannot happen in a run; never loop on one
    seen.add(name);
    const needs = (after.get(name) ?? []).filter((n) => after.has(n));
    const d = needs.length ? 1 + Math.max(...needs.map((n) => visit(n, seen))) : 0;
    depth.set(name, d);
    return d;
  };
  for (const name of after.keys()) visit(name, new Set());
  return depth;
}

export function createTypeGraph() {
  const chart = svg("svg", { class: "labnb-graph", role: "img" });
  const el = h("section", { class: "labnb-graph-box", hidden: true, "aria-label": "Task graph" },
    chart);

  function update(types) {
    const depth = depths(types);
    const columns = [];
    for (const t of [...types].sort((a, b) => a.type.localeCompare(b.type))) {
      const d = depth.get(t.type) ?? 0;
      (columns[d] ??= []).push(t);
    }
    const at = new Map();
    columns.forEach((column, x) =>
      column.forEach((t, y) =>
        at.set(t.type, { x: PAD + x * (BOX.w + GAP.x), y: PAD + y * (BOX.h + GAP.y) }),
      ),
    );
    const width = PAD * 2 + columns.length * BOX.w + Math.max(0, columns.length - 1) * GAP.x;
    const rows = Math.max(1, ...columns.map((c) => c.length));
    const height = PAD * 2 + rows * BOX.h + (rows - 1) * GAP.y;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("width", width);
    chart.setAttribute("height", height);
    const arrow = svg("marker", { id: "labnb-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
      markerWidth: 6, markerHeight: 6, orient: "auto" },
      svg("path", { d: "M0,0 L8,4 L0,8 z", class: "labnb-graph-arrow" }));
    const nodes = [svg("defs", {}, arrow)];
    for (const t of types) {
      const to = at.get(t.type);
      for (const need of t.after ?? []) {
        const from = at.get(need);
        if (!from) continue;
        nodes.push(svg("line", {
          class: "labnb-graph-edge",
          x1: from.x + BOX.w, y1: from.y + BOX.h / 2, x2: to.x - 2, y2: to.y + BOX.h / 2,
          "marker-end": "url(#labnb-arrow)",
        }));
      }
    }
    for (const t of types) {
      const { x, y } = at.get(t.type);
      const state = t.failed ? "failed" : t.done === t.total ? "done" : "running";
      const counts = `${t.done}/${t.total}` + (t.failed ? ` \u00b7 ${t.failed} failed` : "");
      const box = svg("g", { class: "labnb-graph-node", "data-type": t.type, "data-state": state },
        svg("rect", { x, y, width: BOX.w, height: BOX.h, rx: 4 }),
        svg("text", { x: x + 8, y: y + 17, class: "labnb-graph-name" }, t.type),
        svg("text", { x: x + 8, y: y + 33, class: "labnb-graph-count" }, counts),
        svg("title", {}, `${t.type}: ${counts}`));
      nodes.push(box);
    }
    chart.replaceChildren(...nodes);
    chart.setAttribute("aria-label", `Task graph: ${types.map((t) => t.type).join(", ")}`);
  }

  return {
    el,
    update,
    toggle() {
      el.hidden = !el.hidden;
      return !el.hidden;
    },
  };
}
