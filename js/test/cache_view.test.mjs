import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { buttons, byRole, FakeModel, fakeKernel, flush, setupDom } from "./harness.mjs";

setupDom();
const { default: widget, rowLabel } = await import("../cache_view.js");

const row = (id, x, extra = {}) => ({
  id,
  type: "Square",
  params: { x: String(x) },
  started: "2025-01-02T03:04:05+00:00",
  duration_s: 0.4,
  size_bytes: 1536,
  ...extra,
});

const initial = () => ({
  groups: [{ type: "Square", count: 120 }, { type: "Total", count: 3 }],
  columns: ["x"],
  rows: [row("a", 1), row("b", 2), row("c", 3)],
  total_rows: 120,
  query: { text: "", type: "", sort: "started", descending: true, page: 0, page_size: 50 },
  kernel_busy: false,
  heartbeat: 0,
});

let el, model, kernel, cleanup;
function mount(state = initial()) {
  el = document.createElement("div");
  document.body.append(el);
  model = new FakeModel(state);
  kernel = fakeKernel();
  cleanup = widget.render({ model, el, experimental: kernel.experimental });
}
const tr = (id) => el.querySelector(`tr[data-task-id="${id}"]`);
const headers = () => [...el.querySelectorAll("thead th")].map((th) => th.textContent.trim());

/** Fake timers, installed before mounting so the view's own timers use them too. */
function withMockTimers() {
  const state = model.state;
  cleanup();
  el.remove();
  mock.timers.enable({ apis: ["setInterval", "setTimeout", "Date"] });
  mount(state);
}

beforeEach(() => mount());
afterEach(() => {
  cleanup?.();
  el.remove();
  mock.timers.reset();
});

test("a column per parameter, human-readable values, paging text", () => {
  assert.deepEqual(headers(), ["", "Type", "x", "Started ▼", "Duration", "Size", "Actions"]);
  assert.match(tr("a").textContent, /1\.5 KB/);
  assert.match(tr("a").textContent, /0\.4 s/);
  assert.match(el.textContent, /rows 1–50 of 120/);
  assert.equal(buttons(el, "Prev")[0].getAttribute("aria-disabled"), "true");
  assert.equal(buttons(el, "Next")[0].getAttribute("aria-disabled"), null);
});

test("rows and their cells are updated in place when the page or columns change", () => {
  const a = tr("a");
  const uncacheA = buttons(a, "Uncache")[0];
  const checkA = a.querySelector("input");
  model.update({ columns: ["x", "seed"], rows: [row("c", 3), row("a", 1, { params: { x: "1", seed: "7" } })] });
  assert.equal(tr("a"), a);
  assert.equal(buttons(a, "Uncache")[0], uncacheA);
  assert.equal(a.querySelector("input"), checkA);
  assert.deepEqual([...el.querySelectorAll("tbody tr")].map((t) => t.dataset.taskId), ["c", "a"]);
  assert.equal(tr("b"), null);
  assert.ok(headers().includes("seed"));
  assert.match(a.textContent, /7/);
});

test("sorting by a header sets query.sort, then toggles descending", () => {
  const size = [...el.querySelectorAll("thead button")].find((b) => b.textContent.startsWith("Size"));
  size.click();
  assert.deepEqual(
    { sort: model.get("query").sort, descending: model.get("query").descending },
    { sort: "size_bytes", descending: false },
  );
  assert.equal(model.saved.length, 1);
  size.click();
  assert.equal(model.get("query").descending, true);
  assert.equal(size.closest("th").getAttribute("aria-sort"), "descending");
});

test("the filter is debounced and resets the page", () => {
  withMockTimers();
  model.update({ query: { ...model.get("query"), page: 2 } });
  const input = el.querySelector("input[type=search]");
  input.value = "squ";
  input.dispatchEvent(new window.Event("input"));
  mock.timers.tick(100);
  input.value = "square";
  input.dispatchEvent(new window.Event("input"));
  mock.timers.tick(200);
  assert.equal(model.saved.length, 0);
  mock.timers.tick(60);
  assert.equal(model.saved.length, 1);
  assert.equal(model.get("query").text, "square");
  assert.equal(model.get("query").page, 0);
});

test("type groups filter by type", () => {
  const total = buttons(el, "Total 3")[0];
  total.click();
  assert.equal(model.get("query").type, "Total");
  assert.equal(total.getAttribute("aria-pressed"), "true");
  buttons(el, "All types 123")[0].click();
  assert.equal(model.get("query").type, "");
});

test("Next and Prev move between pages", () => {
  buttons(el, "Next")[0].click();
  assert.equal(model.get("query").page, 1);
  assert.match(el.textContent, /rows 51–100 of 120/);
  buttons(el, "Prev")[0].click();
  assert.equal(model.get("query").page, 0);
});

test("Uncache selected asks inside the widget, then sends the ids", async () => {
  const selected = buttons(el, "Uncache selected")[0];
  assert.equal(selected.getAttribute("aria-disabled"), "true");
  tr("a").querySelector("input").click();
  tr("c").querySelector("input").click();
  assert.equal(selected.getAttribute("aria-disabled"), null);
  selected.click();
  const bar = el.querySelector(".labnb-confirm");
  assert.equal(bar.hidden, false);
  assert.match(bar.textContent, /2 selected tasks/);
  buttons(el, "Keep")[0].click();
  assert.equal(bar.hidden, true);
  assert.equal(kernel.calls.length, 0);

  selected.click();
  const confirm = buttons(el, "Confirm")[0];
  confirm.click();
  assert.deepEqual(kernel.calls.at(-1).msg, { ids: ["a", "c"] });
  assert.equal(confirm.textContent, "Uncaching…");
  kernel.answer({ ok: true, removed: 2, unknown: [] });
  await flush();
  assert.equal(bar.hidden, true);
  assert.equal(byRole(el, "status")[0].textContent, "Removed 2 tasks from the cache.");
  assert.equal(selected.getAttribute("aria-disabled"), "true");
});

test("per-row Uncache and Logs", async () => {
  const uncache = buttons(tr("b"), "Uncache")[0];
  uncache.click();
  assert.deepEqual(kernel.calls.at(-1).msg, { ids: ["b"] });
  assert.equal(uncache.getAttribute("aria-busy"), "true");
  kernel.answer({ ok: true, removed: 1, unknown: [] });
  await flush();
  assert.equal(uncache.getAttribute("aria-busy"), null);

  buttons(tr("a"), "Logs")[0].click();
  assert.deepEqual(kernel.calls.at(-1).msg, { id: "a" });
  kernel.answer({ ok: true, text: "hello\n" });
  await flush();
  const [log] = byRole(el, "log", `Logs of ${rowLabel(row("a", 1))}`);
  assert.equal(log.textContent, "hello\n");
  assert.equal(rowLabel(row("a", 1)), "Square(x=1)");
  buttons(el, "Close logs")[0].click();
  assert.equal(log.closest("section").hidden, true);
});

test("a page past the end after removals goes to the last page", () => {
  model.update({ query: { ...model.get("query"), page: 2 } });
  model.update({ total_rows: 60, rows: [] });
  assert.equal(model.get("query").page, 1);
});

test("unmounting removes every model listener", () => {
  cleanup();
  cleanup = null;
  assert.equal(model.listenerCount, 0);
});

test("the filter note shows the syntax hint, how the kernel read the text, or its error", () => {
  const note = el.querySelector(".labnb-filter-note");
  const input = el.querySelector("input[type=search]");
  assert.equal(input.getAttribute("aria-describedby"), note.id);
  model.update({ filter_info: { hint: "Filter: seed=3", error: "", terms: [], words: [] } });
  assert.equal(note.textContent, "Filter: seed=3");
  model.update({ filter_info: { hint: "h", error: "", terms: ["seed == 3"], words: ["svm"] } });
  assert.equal(note.textContent, "Matching seed == 3; text has \u201csvm\u201d");
  model.update({ filter_info: { hint: "h", error: "No field 'sedd'.", terms: [], words: [] } });
  assert.equal(note.textContent, "No field 'sedd'.");
  assert.equal(input.getAttribute("aria-invalid"), "true");
  model.update({ total_rows: 0, rows: [] });
  assert.match(el.textContent, /No matches/);
  assert.doesNotMatch(el.textContent, /rows 0/);
});

test("a selection lasts across pages of one filter and is cleared by another filter", () => {
  tr("a").querySelector("input").click();
  model.update({ query: { ...model.get("query"), page: 1 }, rows: [row("d", 4)] });
  assert.match(el.querySelector(".labnb-selection-count").textContent, /1 selected \(1 on other pages\)/);
  model.update({ query: { ...model.get("query"), text: "x>1", page: 0 } });
  assert.equal(el.querySelector(".labnb-selection-count").textContent, "");
});

test("Select all N matching uncaches by the query and N, never by ids", async () => {
  assert.equal(buttons(el, "Select all 120 matching")[0].hidden, true);
  el.querySelector("thead input").click(); // the page's rows
  const matching = buttons(el, "Select all 120 matching")[0];
  assert.equal(matching.hidden, false);
  matching.click();
  assert.equal(el.querySelector(".labnb-selection-count").textContent, "All 120 matching selected");
  buttons(el, "Uncache selected")[0].click();
  assert.match(el.querySelector(".labnb-confirm").textContent, /Remove all 120 matching tasks/);
  buttons(el, "Confirm")[0].click();
  assert.equal(kernel.calls.at(-1).name, "uncache_matching");
  assert.deepEqual(kernel.calls.at(-1).msg, { text: "", type: "", expected: 120 });
  kernel.answer({ ok: true, removing: 120 });
  await flush();
  model.update({ uncaching: { running: true, removed: 40, total: 120, error: "" } });
  assert.equal(byRole(el, "status")[0].textContent, "Uncaching\u2026 40 of 120 removed");
  model.update({ uncaching: { running: false, removed: 120, total: 120, error: "" } });
  assert.equal(byRole(el, "status")[0].textContent, "Removed 120 tasks from the cache.");
  assert.equal(el.querySelector(".labnb-selection-count").textContent, "");
});

test("unticking one row of all matching keeps the rest of the page selected", () => {
  el.querySelector("thead input").click();
  buttons(el, "Select all 120 matching")[0].click();
  tr("b").querySelector("input").click();
  assert.equal(el.querySelector(".labnb-selection-count").textContent, "2 selected");
});

test("page size and jump to page set the query", () => {
  const size = el.querySelector("select.labnb-page-size");
  size.value = "25";
  size.dispatchEvent(new window.Event("change"));
  assert.equal(model.get("query").page_size, 25);
  const page = el.querySelector("input.labnb-page-input");
  assert.match(el.textContent, /of 5/);
  page.value = "9";
  page.dispatchEvent(new window.Event("change"));
  assert.equal(model.get("query").page, 4); // clamped to the last page
  assert.match(el.textContent, /rows 101–120 of 120/);
});

test("long parameter values carry the whole value on hover", () => {
  model.update({ rows: [row("a", 1, { params: { x: "{'depth': 3, 'notes': 'long'}" } })] });
  const cell = tr("a").querySelector("td.labnb-param");
  assert.equal(cell.getAttribute("title"), "{'depth': 3, 'notes': 'long'}");
  assert.equal(cell.querySelector(".labnb-cut").textContent, "{'depth': 3, 'notes': 'long'}");
});
