// The log panel's Metrics and Artifacts sections (js/metrics.js), in both views.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { buttons, byRole, FakeModel, fakeKernel, flush, setupDom } from "./harness.mjs";

setupDom();
const { default: runView } = await import("../run_view.js");
const { default: cacheView } = await import("../cache_view.js");
const { formatMetric, sparkPoints } = await import("../metrics.js");

const ID = "a".repeat(32);
const task = (status) => ({
  id: ID,
  type: "Train",
  label: "Train(c=0.5)",
  params: "Train(c=0.5)",
  status,
  elapsed_s: 1,
  cpu_percent: null,
  memory_mb: null,
  progress: null,
});
const logTask = (extra = {}) => ({
  id: ID,
  label: "Train(c=0.5)",
  status: "running",
  text: "epoch 0\n",
  metrics: [],
  artifacts: [],
  models: [],
  ...extra,
});
const loss = (n) => ({
  name: "loss",
  last: 1 / n,
  points: Array.from({ length: n }, (_, i) => [i, 1 / (i + 1)]),
});

let el, cleanup;
function mount(widget, state, kernel = fakeKernel()) {
  el = document.createElement("div");
  document.body.append(el);
  const model = new FakeModel(state);
  cleanup = widget.render({ model, el, experimental: kernel.experimental });
  return { model, kernel };
}
afterEach(() => {
  cleanup?.();
  cleanup = null;
  el.remove();
});

const runState = (log) => ({
  summary: { total: 1, done: 0, loaded: 0, failed: 0, running: 1, elapsed_s: 1, eta_s: null,
    state: "running", blocking: false },
  types: [{ type: "Train", total: 1, done: 0, failed: 0 }],
  tasks: [task("running")],
  log_task: log,
  kernel_busy: false,
  heartbeat: 0,
});
const metricNames = () => [...el.querySelectorAll("[data-metric]")].map((li) => li.dataset.metric);

test("a growing metric series redraws its sparkline in place", () => {
  const { model } = mount(runView, runState(logTask({ metrics: [loss(1)] })));
  const section = el.querySelector(".labnb-metrics");
  assert.equal(section.hidden, false);
  assert.deepEqual(metricNames(), ["loss"]);
  const li = el.querySelector('[data-metric="loss"]');
  assert.match(li.textContent, /loss/);
  assert.match(li.querySelector(".labnb-metric-last").textContent, /^1$/);
  // One point: no chart yet.
  assert.equal(byRole(el, "img", "loss over steps").length, 0);

  model.update({ log_task: logTask({ metrics: [loss(2)] }) });
  const [svg] = byRole(el, "img", "loss over steps");
  assert.ok(svg, "a sparkline appears with the second point");
  const line = svg.querySelector("polyline");
  assert.equal(line.getAttribute("points").split(" ").length, 2);
  assert.equal(el.querySelector(".labnb-metric-last").textContent, "0.5");

  for (let n = 3; n <= 20; n++) model.update({ log_task: logTask({ metrics: [loss(n)] }) });
  // The same nodes, updated: no flicker.
  assert.equal(el.querySelector('[data-metric="loss"]'), li);
  assert.equal(byRole(el, "img", "loss over steps")[0], svg);
  assert.equal(svg.querySelector("polyline"), line);
  assert.equal(line.getAttribute("points").split(" ").length, 20);
  assert.equal(el.querySelector(".labnb-metric-last").textContent, "0.05");

  // A second metric arrives; the first row stays put.
  const accuracy = { name: "accuracy", last: 0.75, points: [[0, 0.75]] };
  model.update({ log_task: logTask({ metrics: [loss(21), accuracy] }) });
  assert.deepEqual(metricNames(), ["loss", "accuracy"]);
  assert.equal(el.querySelector('[data-metric="loss"]'), li);
  assert.equal(byRole(el, "img", "accuracy over steps").length, 0);
  // The text log still grows by appending.
  assert.equal(byRole(el, "log")[0].textContent, "epoch 0\n");
});

test("artifacts and models are listed, models marked; closing clears them", () => {
  const { model } = mount(
    runView,
    runState(logTask({ status: "done", artifacts: ["report.txt", "plots"], models: ["model"] })),
  );
  const section = el.querySelector(".labnb-artifacts");
  assert.equal(section.hidden, false);
  const items = [...section.querySelectorAll("li")];
  assert.deepEqual(
    items.map((li) => [li.querySelector(".labnb-artifact-name").textContent, li.dataset.kind]),
    [["report.txt", "artifact"], ["plots", "artifact"], ["model", "model"]],
  );
  assert.equal(items[2].querySelector(".labnb-model-tag").textContent, "model");
  assert.equal(el.querySelector(".labnb-metrics").hidden, true);
  model.update({ log_task: { id: "", label: "", status: "", text: "", metrics: [], artifacts: [],
    models: [] } });
  assert.equal(el.querySelectorAll(".labnb-artifact").length, 0);
  assert.equal(el.querySelector(".labnb-tracking").hidden, true);
});

test("no tracking (an older kernel) shows only the logs", () => {
  mount(runView, runState({ id: ID, label: "Train(c=0.5)", status: "running", text: "x" }));
  assert.equal(el.querySelector(".labnb-tracking").hidden, true);
  assert.equal(byRole(el, "log")[0].textContent, "x");
});

test("the cache browser shows a cached task's metrics and artifacts from its reply", async () => {
  const { kernel } = mount(cacheView, {
    groups: [{ type: "Train", count: 1 }],
    columns: ["c"],
    rows: [{ id: ID, type: "Train", params: { c: "0.5" }, started: "2025-01-02T03:04:05+00:00",
      duration_s: 1, size_bytes: 10 }],
    total_rows: 1,
    query: { text: "", type: "", sort: "started", descending: true, page: 0, page_size: 50 },
    kernel_busy: false,
    heartbeat: 0,
  });
  buttons(el, "Logs")[0].click();
  kernel.answer({ ok: true, text: "done\n", metrics: [loss(3)], artifacts: ["a.csv"], models: [] });
  await flush();
  assert.equal(byRole(el, "img", "loss over steps").length, 1);
  assert.deepEqual(
    [...el.querySelectorAll(".labnb-artifact-name")].map((n) => n.textContent),
    ["a.csv"],
  );
});

test("formatting and scaling helpers", () => {
  assert.equal(formatMetric(3), "3");
  assert.equal(formatMetric(0.123456), "0.1235");
  assert.equal(formatMetric(1 / 3), "0.3333");
  assert.equal(formatMetric(1.5e-5), "1.500e-5");
  assert.equal(formatMetric(null), "\u2013");
  assert.equal(sparkPoints([[0, 1]]), "");
  assert.equal(sparkPoints([[0, 1], [1, 0]], 100, 20), "2.0,2.0 98.0,18.0");
  assert.equal(sparkPoints([[0, 5], [1, 5]], 100, 20), "2.0,10.0 98.0,10.0");
});

test("a log panel sets a logged line's time and level apart, and leaves printed text as it is", async () => {
  const { createLogPanel } = await import("../common.js");
  const panel = createLogPanel({ onClose: () => {} });
  panel.show({ id: "a", label: "T", status: "running", text: "epoch 1\n14:03:07 WARNING labnb: lr" });
  panel.show({ id: "a", label: "T", status: "running",
    text: "epoch 1\n14:03:07 WARNING labnb: lr too high\n14:03:08 INFO x.y: done\n" });
  const pre = panel.el.querySelector("pre");
  assert.equal(pre.textContent,
    "epoch 1\n14:03:07 WARNING labnb: lr too high\n14:03:08 INFO x.y: done\n");
  const metas = [...pre.querySelectorAll(".labnb-log-meta")];
  assert.deepEqual(metas.map((m) => m.dataset.level), ["WARNING", "INFO"]);
  assert.equal(metas[0].textContent, "14:03:07 WARNING labnb:");
});
