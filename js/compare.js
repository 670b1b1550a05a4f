// The cache browser's compare view: a metric against a parameter, one point per
// cached task, coloured by another parameter, drawn as SVG in the widget (no
// server, no plotting library). The kernel sends the points (`compare`).

import { h, svg } from "./common.js";

const WIDTH = 520;
const HEIGHT = 260;
const MARGIN = { left: 56, right: 12, top: 10, bottom: 34 };
const INSET = 8;
/** Categorical colours that read on light and dark backgrounds alike. */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#b07aa1",
  "#76b7b2",
  "#edc948",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];


const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** Short tick text: 0.001, 12.5, 1.2e+6. */
export function tickText(value) {
  if (value === 0) return "0";
  const size = Math.abs(value);
  return size >= 1e5 || size < 1e-3 ? value.toExponential(1) : String(+value.toPrecision(3));
}

/**
 * Where each value goes along an axis of `length` pixels: numbers on a linear
 * scale (inset from the ends), anything else as evenly spaced categories (sorted).
 */
export function axisFor(values, length) {
  if (values.length && values.every(isNumber)) {
    let low = Math.min(...values);
    let high = Math.max(...values);
    if (low === high) [low, high] = [low - 1, high + 1];
    // Inset from both ends, so no point sits on an axis line or outside the plot.
    const at = (value) => INSET + ((value - low) / (high - low)) * (length - 2 * INSET);
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => low + f * (high - low));
    return { at, ticks: ticks.map((value) => ({ at: at(value), text: tickText(value) })) };
  }
  const names = [...new Set(values.map(String))].sort();
  const step = length / Math.max(names.length, 1);
  const at = (value) => (names.indexOf(String(value)) + 0.5) * step;
  return { at, ticks: names.map((name) => ({ at: at(name), text: name })) };
}

/**
 * The compare panel: three selects (metric, parameter, colour) and the chart.
 * `onChange({x, y, colour})` asks for points; `draw(reply)` shows them.
 */
export function createComparePanel({ onChange }) {
  const choose = (label) => h("select", { class: "labnb-compare-select", "aria-label": label });
  const ySelect = choose("Metric (vertical axis)");
  const xSelect = choose("Parameter (horizontal axis)");
  const colourSelect = choose("Colour by");
  const chart = svg("svg", {
    class: "labnb-compare-chart",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    width: WIDTH,
    height: HEIGHT,
  });
  const legend = h("div", { class: "labnb-compare-legend" });
  const note = h("p", { class: "labnb-compare-note" });
  const el = h(
    "section",
    { class: "labnb-compare", hidden: true, "aria-label": "Compare" },
    h(
      "div",
      { class: "labnb-toolbar" },
      h("label", { text: "Metric " }, ySelect),
      h("label", { text: " against " }, xSelect),
      h("label", { text: " colour by " }, colourSelect),
    ),
    chart,
    legend,
    note,
  );
  const ask = () =>
    onChange({ x: xSelect.value, y: ySelect.value, colour: colourSelect.value });
  for (const select of [xSelect, ySelect, colourSelect]) select.addEventListener("change", ask);

  function fill(select, names, keep, none = null) {
    const previous = select.value;
    const options = none === null ? [] : [h("option", { value: "", text: none })];
    for (const name of names) options.push(h("option", { value: name, text: name }));
    select.replaceChildren(...options);
    if (names.includes(previous) || (none !== null && previous === "")) select.value = previous;
    else if (keep && names.includes(keep)) select.value = keep;
  }

  /** The columns one can plot: metrics first for the vertical axis. */
  function setColumns(columns) {
    const metrics = columns.filter((name) => name.startsWith("metrics."));
    const params = columns.filter((name) => !name.startsWith("metrics."));
    fill(ySelect, [...metrics, ...params, "duration_s"], metrics[0] ?? "duration_s");
    fill(xSelect, [...params, ...metrics, "duration_s"], params[0]);
    fill(colourSelect, params, "", "nothing");
  }

  function draw({ points = [], total = 0, x = "", y = "", colour = "" }) {
    const inner = { w: WIDTH - MARGIN.left - MARGIN.right, h: HEIGHT - MARGIN.top - MARGIN.bottom };
    const shown = points.filter((point) => isNumber(point[1]));
    const xAxis = axisFor(shown.map((point) => point[0]), inner.w);
    const yAxis = axisFor(shown.map((point) => point[1]), inner.h);
    const colours = [...new Set(shown.map((point) => String(point[2] ?? "")))].sort();
    const colourOf = (value) => PALETTE[colours.indexOf(String(value ?? "")) % PALETTE.length];
    const nodes = [
      svg("line", { class: "labnb-axis", x1: 0, y1: inner.h, x2: inner.w, y2: inner.h }),
      svg("line", { class: "labnb-axis", x1: 0, y1: 0, x2: 0, y2: inner.h }),
    ];
    const labelEvery = Math.ceil(xAxis.ticks.length / 8); // categories: at most 8 labels
    const text = (className, attrs, content) =>
      svg("text", { class: className, ...attrs }, content);
    xAxis.ticks.forEach((tick, index) => {
      if (index % labelEvery) return;
      nodes.push(text("labnb-tick", { x: tick.at, y: inner.h + 14, "text-anchor": "middle" },
        tick.text));
    });
    for (const tick of yAxis.ticks) {
      const at = inner.h - tick.at + 4;
      nodes.push(text("labnb-tick", { x: -6, y: at, "text-anchor": "end" }, tick.text));
    }
    nodes.push(
      text("labnb-axis-label", { x: inner.w / 2, y: inner.h + 30, "text-anchor": "middle" }, x),
    );
    for (const [px, py, pc, id] of shown) {
      const dot = svg("circle", {
        class: "labnb-point",
        cx: xAxis.at(px),
        cy: inner.h - yAxis.at(py),
        r: 4,
        fill: colour ? colourOf(pc) : PALETTE[0],
        "data-task-id": id,
      });
      dot.append(svg("title", {}, `${x}=${px}, ${y}=${py}${colour ? `, ${colour}=${pc}` : ""}`));
      nodes.push(dot);
    }
    const plot = svg("g", { transform: `translate(${MARGIN.left},${MARGIN.top})` }, ...nodes);
    chart.replaceChildren(plot);
    chart.setAttribute("aria-label", `${y} against ${x}: ${shown.length} tasks`);
    const swatch = (name) =>
      h("span", { class: "labnb-legend-swatch", style: `background:${colourOf(name)}` });
    const items = colours.map((name) =>
      h("span", { class: "labnb-legend-item" }, swatch(name), ` ${colour}=${name}`),
    );
    legend.replaceChildren(...(colour ? items : []));
    const missing = points.length - shown.length;
    note.textContent =
      `${shown.length} of ${total} matching tasks` +
      (missing ? ` (${missing} without a number for ${y})` : "") +
      (total > points.length ? `; the first ${points.length} are drawn` : "");
  }

  return {
    el,
    setColumns,
    draw,
    ask,
    toggle() {
      el.hidden = !el.hidden;
      if (!el.hidden) ask();
      return !el.hidden;
    },
  };
}
