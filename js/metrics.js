// The "Metrics" and "Artifacts" sections of the log panel: one row per metric
// (name, last value, a sparkline of a stepped metric) and the task's artifact
// and model names. Rows are keyed by metric name and updated in place, so a
// series growing live redraws only its polyline. Payload: docs/widget-protocol.md.

import { DASH, h, setAttr, setText, syncKeyed } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
export const SPARK_WIDTH = 120;
export const SPARK_HEIGHT = 24;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

/** A metric value for reading: integers as they are, others to 4 significant digits. */
export function formatMetric(value) {
  if (value == null || !Number.isFinite(value)) return DASH;
  if (Number.isInteger(value) && Math.abs(value) < 1e9) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return String(Number(value.toPrecision(4)));
}

/** The `points` attribute of a polyline drawing `points` ([[x, y], ...]) in the box. */
export function sparkPoints(points, width = SPARK_WIDTH, height = SPARK_HEIGHT) {
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (finite.length < 2) return "";
  const xs = finite.map((p) => p[0]);
  const ys = finite.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = 2; // keep the stroke inside the box
  const sx = (x) => (x1 === x0 ? width / 2 : pad + ((x - x0) / (x1 - x0)) * (width - 2 * pad));
  const sy = (y) => (y1 === y0 ? height / 2 : pad + ((y1 - y) / (y1 - y0)) * (height - 2 * pad));
  return finite.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
}

export function createMetricsPanel() {
  const metricsList = h("ul", { class: "labnb-metric-list", "aria-label": "Metrics" });
  const metricRows = new Map(); // metric name -> <li>
  const metricsSection = h(
    "div",
    { class: "labnb-metrics", hidden: true },
    h("h4", { class: "labnb-section-title", text: "Metrics" }),
    metricsList,
  );
  const artifactList = h("ul", { class: "labnb-artifact-list", "aria-label": "Artifacts" });
  const artifactItems = new Map(); // "artifact:name" / "model:name" -> <li>
  const artifactsSection = h(
    "div",
    { class: "labnb-artifacts", hidden: true },
    h("h4", { class: "labnb-section-title", text: "Artifacts" }),
    artifactList,
  );
  const el = h("div", { class: "labnb-tracking", hidden: true }, metricsSection, artifactsSection);

  function createMetricRow(metric) {
    const name = h("span", { class: "labnb-metric-name" });
    const last = h("span", { class: "labnb-metric-last" });
    const chart = h("span", { class: "labnb-metric-chart" });
    const tr = h("li", { class: "labnb-metric", "data-metric": metric.name }, name, last, chart);
    tr.labnbParts = { name, last, chart, svg: null, line: null };
    return tr;
  }

  function updateMetricRow(tr, metric) {
    const p = tr.labnbParts;
    setText(p.name, metric.name);
    setText(p.last, formatMetric(metric.last));
    const points = Array.isArray(metric.points) ? metric.points : [];
    const drawn = points.length > 1 ? sparkPoints(points) : "";
    if (drawn) {
      if (!p.svg) {
        p.line = svg("polyline", { class: "labnb-spark-line", fill: "none" });
        p.svg = svg("svg", {
          class: "labnb-spark",
          role: "img",
          width: SPARK_WIDTH,
          height: SPARK_HEIGHT,
          viewBox: `0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`,
          preserveAspectRatio: "none",
        });
        p.svg.append(p.line);
        p.chart.append(p.svg);
      }
      setAttr(p.svg, "aria-label", `${metric.name} over steps`);
      setAttr(p.line, "points", drawn);
    } else if (p.svg) {
      p.svg.remove();
      p.svg = null;
      p.line = null;
    }
  }

  return {
    el,
    /** Show `{metrics, artifacts, models}` (missing parts count as empty). */
    show({ metrics, artifacts, models } = {}) {
      const list = Array.isArray(metrics) ? metrics.filter((m) => m && m.name != null) : [];
      syncKeyed(metricsList, metricRows, list, (m) => String(m.name), createMetricRow, updateMetricRow);
      metricsSection.hidden = list.length === 0;
      const items = [
        ...(Array.isArray(artifacts) ? artifacts : []).map((name) => ({ name, kind: "artifact" })),
        ...(Array.isArray(models) ? models : []).map((name) => ({ name, kind: "model" })),
      ];
      syncKeyed(
        artifactList,
        artifactItems,
        items,
        (item) => `${item.kind}:${item.name}`,
        (item) => {
          const li = h("li", { class: "labnb-artifact", "data-kind": item.kind });
          li.append(h("span", { class: "labnb-artifact-name" }));
          if (item.kind === "model") li.append(h("span", { class: "labnb-model-tag", text: "model" }));
          return li;
        },
        (li, item) => setText(li.firstChild, String(item.name)),
      );
      artifactsSection.hidden = items.length === 0;
      el.hidden = metricsSection.hidden && artifactsSection.hidden;
    },
    clear() {
      this.show({});
    },
  };
}
