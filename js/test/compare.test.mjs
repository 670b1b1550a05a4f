import assert from "node:assert/strict";
import { test } from "node:test";

import { setupDom } from "./harness.mjs";

setupDom();
const { axisFor, createComparePanel, tickText } = await import("../compare.js");

test("numbers go on a linear axis, anything else on evenly spaced categories", () => {
  const numeric = axisFor([1, 3, 5], 100);
  assert.equal(numeric.at(1), 8); // inset: no point on the axis line
  assert.equal(numeric.at(3), 50);
  assert.equal(numeric.at(5), 92);
  assert.deepEqual(numeric.ticks.map((t) => t.text), ["1", "2", "3", "4", "5"]);
  const named = axisFor(["svm", "lr", "svm"], 100);
  assert.deepEqual(named.ticks.map((t) => t.text), ["lr", "svm"]);
  assert.equal(named.at("lr"), 25);
  assert.equal(named.at("svm"), 75);
  assert.equal(tickText(0.00012), "1.2e-4");
  assert.equal(tickText(12.3456), "12.3");
});

test("the panel asks for the chosen columns and draws one point per task", () => {
  const asked = [];
  const panel = createComparePanel({ onChange: (axes) => asked.push(axes) });
  panel.setColumns(["params.C", "params.seed", "metrics.accuracy"]);
  assert.equal(panel.toggle(), true);
  assert.deepEqual(asked.at(-1), { x: "params.C", y: "metrics.accuracy", colour: "" });
  panel.draw({
    points: [[0.1, 0.8, 1, "a"], [1, 0.9, 2, "b"], [10, null, 1, "c"]],
    total: 3,
    x: "params.C",
    y: "metrics.accuracy",
    colour: "params.seed",
  });
  const dots = panel.el.querySelectorAll("circle.labnb-point");
  assert.equal(dots.length, 2);
  assert.notEqual(dots[0].getAttribute("fill"), dots[1].getAttribute("fill"));
  assert.match(dots[1].textContent, /params\.C=1, metrics\.accuracy=0\.9, params\.seed=2/);
  assert.match(panel.el.textContent, /2 of 3 matching tasks \(1 without a number for metrics\.accuracy\)/);
  assert.match(panel.el.textContent, /params\.seed=1/); // the legend
});
