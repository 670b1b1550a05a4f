import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";

import { BUSY_TEXT, LOST_TEXT } from "../actions.js";
import { buttons, byRole, FakeModel, fakeKernel, flush, setupDom } from "./harness.mjs";

setupDom();
const { default: widget, BLOCKING_NOTE } = await import("../run_view.js");

const task = (id, status, extra = {}) => ({
  id,
  type: "Square",
  label: `Square(x=${id})`,
  params: `Square(x=${id})`,
  status,
  elapsed_s: 1.5,
  cpu_percent: status === "running" ? 97.4 : null,
  memory_mb: status === "running" ? 120.3 : null,
  progress: null,
  ...extra,
});

const initial = () => ({
  summary: {
    total: 10, done: 4, loaded: 2, failed: 1, running: 2,
    elapsed_s: 75, eta_s: 30, state: "running", blocking: false,
  },
  types: [{ type: "Square", total: 10, done: 4, failed: 1 }],
  tasks: [task("1", "running"), task("2", "running"), task("3", "failed"), task("4", "done")],
  log_task: { id: "", label: "", status: "", text: "" },
  kernel_busy: false,
  heartbeat: 0,
});

let el, model, kernel, cleanup;
function mount(state = initial(), auto = {}) {
  el = document.createElement("div");
  document.body.append(el);
  model = new FakeModel(state);
  kernel = fakeKernel(auto);
  cleanup = widget.render({ model, el, experimental: kernel.experimental });
}
const rowIds = () => [...el.querySelectorAll("tbody tr")].map((tr) => tr.dataset.taskId);
const row = (id) => el.querySelector(`tr[data-task-id="${id}"]`);

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

test("progress bars carry their ARIA values and labels", () => {
  const [overall] = byRole(el, "progressbar", "Overall progress");
  assert.equal(overall.getAttribute("aria-valuenow"), "4");
  assert.equal(overall.getAttribute("aria-valuemin"), "0");
  assert.equal(overall.getAttribute("aria-valuemax"), "10");
  const [perType] = byRole(el, "progressbar", "Square");
  assert.equal(perType.getAttribute("aria-valuenow"), "4");
  assert.match(el.textContent, /4\/10 done · 2 loaded from cache · 1 failed/);
  assert.match(el.textContent, /Elapsed 1m 15s · ETA 30 s/);
});

test("task rows are keyed, updated in place, reordered and removed", () => {
  assert.deepEqual(rowIds(), ["1", "2", "3", "4"]);
  const [tr1, tr2, tr4] = [row("1"), row("2"), row("4")];
  const logs4 = tr4.querySelector("button");
  model.update({
    tasks: [
      task("2", "running", { progress: { n: 3, total: 8, desc: "epochs" } }),
      task("3", "failed"),
      task("1", "done", { elapsed_s: 12 }),
      task("4", "done"),
      task("5", "loaded"),
    ],
  });
  assert.deepEqual(rowIds(), ["2", "3", "1", "4", "5"]);
  assert.equal(row("1"), tr1);
  assert.equal(row("2"), tr2);
  assert.equal(row("4").querySelector("button"), logs4, "buttons are reused");
  assert.match(tr1.textContent, /done/);
  assert.match(tr1.textContent, /12 s/);
  const [bar] = byRole(el, "progressbar", "Square(x=2) progress");
  assert.equal(bar.getAttribute("aria-valuenow"), "3");
  assert.equal(bar.getAttribute("aria-valuemax"), "8");
  model.update({ tasks: [task("5", "loaded")] });
  assert.deepEqual(rowIds(), ["5"]);
  assert.equal(tr1.isConnected, false);
});

test("focus stays on a button whose row moves", () => {
  const logs = row("1").querySelector("button");
  logs.focus();
  model.update({ tasks: [task("2", "running"), task("3", "failed"), task("1", "done")] });
  assert.equal(document.activeElement, logs);
});

test("Cancel: pending, then the kernel's answer", async () => {
  const [cancel] = buttons(el, "Cancel");
  cancel.click();
  assert.equal(kernel.calls.at(-1).name, "cancel");
  assert.equal(cancel.getAttribute("aria-busy"), "true");
  assert.equal(cancel.getAttribute("aria-disabled"), "true");
  assert.equal(cancel.textContent, "Cancelling…");
  cancel.click(); // ignored while pending
  assert.equal(kernel.calls.length, 1);
  kernel.answer({ ok: true });
  await flush();
  assert.equal(cancel.textContent, "Cancel");
  assert.equal(cancel.getAttribute("aria-busy"), null);
  assert.match(byRole(el, "status")[0].textContent, /Cancel requested/);
  model.update({ summary: { ...model.get("summary"), state: "cancelled" } });
  assert.equal(cancel.getAttribute("aria-disabled"), "true");
});

test("an unanswered click says 'not delivered' after 5 s and re-enables", async () => {
  withMockTimers();
  const [cancel] = buttons(el, "Cancel");
  cancel.click();
  mock.timers.tick(2500);
  await flush();
  assert.notEqual(byRole(el, "status")[0].textContent, BUSY_TEXT);
  mock.timers.tick(3000);
  await flush();
  assert.equal(byRole(el, "status")[0].textContent, LOST_TEXT);
  assert.equal(cancel.getAttribute("aria-disabled"), null);
  assert.equal(cancel.textContent, "Cancel");
});

test("while the kernel is busy a click waits, and says so", async () => {
  withMockTimers();
  model.update({ kernel_busy: true });
  const [cancel] = buttons(el, "Cancel");
  cancel.click();
  mock.timers.tick(2250);
  await flush();
  assert.equal(byRole(el, "status")[0].textContent, BUSY_TEXT);
  mock.timers.tick(20_000);
  await flush();
  assert.equal(cancel.getAttribute("aria-busy"), "true", "still waiting");
  kernel.answer({ ok: false, error: "nope" });
  await flush();
  assert.equal(byRole(el, "status")[0].textContent, "Cancel failed: nope");
});

test("the blocking note follows summary.blocking", () => {
  const note = [...el.querySelectorAll("p")].find((p) => p.textContent === BLOCKING_NOTE);
  assert.equal(note.hidden, true);
  model.update({ summary: { ...model.get("summary"), blocking: true } });
  assert.equal(note.hidden, false);
});

test("logs: a row click opens the panel, text streams, Close logs closes", async () => {
  row("1").querySelector("td").click();
  assert.deepEqual(kernel.calls.at(-1), { name: "open_logs", msg: { id: "1" }, signal: kernel.calls.at(-1).signal });
  // The kernel sets log_task, then answers.
  model.update({ log_task: { id: "1", label: "Square(x=1)", status: "running", text: "epoch 1\n" } });
  kernel.answer({ ok: true, text: "epoch 1\n" });
  await flush();
  const [log] = byRole(el, "log", "Logs of Square(x=1)");
  assert.ok(log && !log.closest("section").hidden);
  const firstChunk = log.firstChild;
  model.update({ log_task: { id: "1", label: "Square(x=1)", status: "running", text: "epoch 1\nepoch 2\n" } });
  assert.equal(log.textContent, "epoch 1\nepoch 2\n");
  assert.equal(log.firstChild, firstChunk, "new text is appended, not re-rendered");
  assert.ok(row("1").classList.contains("labnb-selected"));

  buttons(el, "Close logs")[0].click();
  assert.equal(log.closest("section").hidden, true);
  assert.equal(kernel.calls.at(-1).name, "close_logs");
  // A late update for the closed task does not reopen the panel.
  model.update({ log_task: { id: "1", label: "Square(x=1)", status: "running", text: "epoch 3\n" } });
  assert.equal(log.closest("section").hidden, true);
});

test("unmounting removes every model listener", () => {
  assert.ok(model.listenerCount > 0);
  cleanup();
  cleanup = null;
  assert.equal(model.listenerCount, 0);
  assert.equal(el.children.length, 0);
});

test("the Holds column appears only when a task holds GPUs, with the GPU's use while it runs", () => {
  const table = el.querySelector(".labnb-tasks");
  assert.equal(table.classList.contains("labnb-with-holds"), false);
  model.update({
    tasks: [
      task("1", "running", { resources: "GPU 1 · 4 CPUs", gpu_percent: 63, gpu_memory_mb: 1200 }),
      task("2", "done", { resources: "GPU 0" }),
    ],
  });
  assert.equal(table.classList.contains("labnb-with-holds"), true);
  const cells = [...el.querySelectorAll("tbody td.labnb-gpu")].map((td) => td.textContent);
  assert.deepEqual(cells, ["GPU 1 \u00b7 4 CPUs \u00b7 63% \u00b7 1200 MB", "GPU 0"]);
});

test("a big run offers a status filter and says how many rows it shows", () => {
  model.update({
    summary: { ...initial().summary, total: 500, done: 300, loaded: 0, failed: 150, running: 2, waiting: 48 },
    task_view: { status: "", limit: 200, shown: 200, matching: 500 },
  });
  const chips = [...el.querySelectorAll(".labnb-task-filter .labnb-chip")];
  assert.deepEqual(
    chips.map((c) => c.textContent),
    ["All 500", "Running 2", "Failed 150", "Waiting 48", "Done 300"],
  );
  assert.equal(chips[0].getAttribute("aria-pressed"), "true");
  const note = el.querySelector(".labnb-rows-note");
  assert.equal(note.hidden, false);
  assert.match(note.textContent, /Showing 200 of 500 tasks\. Show 200 more/);
  chips[2].click();
  const last = () => ({ name: kernel.calls.at(-1).name, msg: kernel.calls.at(-1).msg });
  assert.deepEqual(last(), { name: "show_tasks", msg: { status: "failed", limit: 200 } });
  buttons(el, "Show 200 more")[0].click();
  assert.deepEqual(last(), { name: "show_tasks", msg: { status: "", limit: 400 } });
});

test("a fully cached rerun is one line, with its table a click away", () => {
  model.update({
    summary: { ...initial().summary, total: 20, done: 20, loaded: 20, failed: 0, running: 0, waiting: 0, state: "done" },
    tasks: [task("1", "loaded"), task("2", "loaded")],
    task_view: { status: "", limit: 200, shown: 20, matching: 20 },
  });
  const note = el.querySelector(".labnb-loaded-note");
  assert.equal(note.hidden, false);
  assert.match(note.textContent, /All 20 tasks loaded from cache\./);
  assert.equal(el.querySelector(".labnb-tasks").hidden, true);
  buttons(el, "Show them")[0].click();
  assert.equal(el.querySelector(".labnb-tasks").hidden, false);
  assert.equal(note.hidden, true);
});

test("Why? asks the kernel why a task ran and shows the answer under its name", async () => {
  assert.equal(row("4").querySelector("button[title^='Why']").hidden, false); // done: it ran
  model.update({ tasks: [...initial().tasks, task("5", "loaded")] });
  assert.equal(row("5").querySelector("button[title^='Why']").hidden, true); // loaded: it did not
  row("4").querySelector("button[title^='Why']").click();
  kernel.answer({ ok: true, text: "Square(x=4) is not cached. The nearest differ in: x" });
  await flush();
  assert.deepEqual(
    { name: kernel.calls.at(-1).name, msg: kernel.calls.at(-1).msg },
    { name: "why", msg: { id: "4" } },
  );
  const why = row("4").querySelector(".labnb-why");
  assert.equal(why.hidden, false);
  assert.match(why.textContent, /The nearest differ in: x/);
  row("4").querySelector("button[title^='Why']").click(); // folds it away
  assert.equal(why.hidden, true);
});
