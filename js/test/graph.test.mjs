import assert from "node:assert/strict";
import { test } from "node:test";

import { setupDom } from "./harness.mjs";

setupDom();
const { createTypeGraph, depths } = await import("../graph.js");

const types = [
  { type: "Evaluate", total: 30, done: 28, failed: 2, after: ["Train", "Prepare"] },
  { type: "Prepare", total: 3, done: 3, failed: 0, after: [] },
  { type: "Train", total: 30, done: 30, failed: 0, after: ["Prepare"] },
];

test("a type's column is one past the deepest type it needs", () => {
  assert.deepEqual(Object.fromEntries(depths(types)), { Evaluate: 2, Prepare: 0, Train: 1 });
});

test("the graph draws a box per type with its counts and an arrow per dependency", () => {
  const graph = createTypeGraph();
  graph.update(types);
  const boxes = [...graph.el.querySelectorAll(".labnb-graph-node")];
  assert.deepEqual(boxes.map((b) => b.dataset.type).sort(), ["Evaluate", "Prepare", "Train"]);
  const evaluate = boxes.find((b) => b.dataset.type === "Evaluate");
  assert.equal(evaluate.dataset.state, "failed");
  assert.match(evaluate.textContent, /28\/30 · 2 failed/);
  assert.equal(graph.el.querySelectorAll(".labnb-graph-edge").length, 3);
});
