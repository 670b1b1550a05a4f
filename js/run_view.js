// RunView: one run, live. Traits and commands: docs/widget-protocol.md.

import { createActions, onPress, setDisabled } from "./actions.js";
import {
  createLogPanel,
  createProgressBar,
  createStatus,
  ELLIPSIS,
  formatDuration,
  formatNumber,
  h,
  listen,
  setAttr,
  setText,
  syncKeyed,
  watchHeartbeat,
} from "./common.js";
import { createTypeGraph } from "./graph.js";
import { createMetricsPanel } from "./metrics.js";

export const BLOCKING_NOTE =
  "This cell is running: buttons respond when it finishes. " +
  "Use the kernel's stop button to cancel.";

const STATE_TEXT = {
  running: "Running",
  done: "Done",
  cancelled: "Cancelled",
  failed: "Failed",
  lost: "Lost: its run process died",
};
const ROW_STEP = 200; // rows a "Show more" adds (the kernel's MAX_TASK_ROWS)
const STATUS_TEXT = {
  starting: "starting",
  running: "running",
  failed: "failed",
  done: "done",
  loaded: "loaded from cache",
  cancelled: "cancelled",
};

function render({ model, el, experimental }) {
  const summaryOf = () => model.get("summary") ?? {};
  const status = createStatus();
  const actions = createActions({
    experimental,
    status,
    isBusy: () => Boolean(model.get("kernel_busy") || summaryOf().blocking),
  });

  // --- header: overall bar, counts, times, Cancel
  const overall = createProgressBar("Overall progress", ["loaded", "done", "failed"]);
  const stateBadge = h("span", { class: "labnb-badge" });
  const counts = h("span", { class: "labnb-counts" });
  const times = h("span", { class: "labnb-times" });
  // "3 failed: ValueError ×2 · KeyError ×1", each kind opening a traceback.
  const failuresBox = h("div", { class: "labnb-failures", hidden: true });
  const cancel = h("button", {
    type: "button",
    class: "labnb-button labnb-danger",
    text: "Cancel",
  });
  onPress(cancel, () =>
    actions.run(cancel, "cancel", {}, {
      pending: `Cancelling${ELLIPSIS}`,
      success: () => "Cancel requested: running tasks are being stopped.",
      failure: "Cancel failed",
    }),
  );
  const blockingNote = h("p", { class: "labnb-note", hidden: true, text: BLOCKING_NOTE });
  const staleNote = h("p", { class: "labnb-note labnb-warning", hidden: true });

  // --- one bar per task type, and the run's graph by type
  const typesBox = h("div", { class: "labnb-types" });
  const typeRows = new Map();
  const graph = createTypeGraph();
  const graphButton = h("button", {
    type: "button",
    class: "labnb-button labnb-small",
    text: "Task graph",
    "aria-expanded": "false",
    hidden: true,
  });
  onPress(graphButton, () => {
    graph.update(model.get("types") ?? []);
    setAttr(graphButton, "aria-expanded", String(graph.toggle()));
  });

  // --- which rows: a status filter, "showing N of M", and a compact cached rerun
  const filterBox = h("div", {
    class: "labnb-task-filter",
    role: "group",
    "aria-label": "Show tasks",
  });
  const filterButtons = new Map(); // status ("" for all) -> <button>
  const rowsNote = h("p", { class: "labnb-rows-note", hidden: true });
  const rowsText = h("span");
  const showMore = h("button", { type: "button", class: "labnb-button labnb-small" });
  rowsNote.append(rowsText, " ", showMore);
  const loadedNote = h("p", { class: "labnb-loaded-note", hidden: true });
  const loadedText = h("span");
  const showLoaded = h("button", { type: "button", class: "labnb-link", text: "Show them" });
  loadedNote.append(loadedText, " ", showLoaded);
  let loadedShown = false; // a fully cached run's table, opened by the user
  onPress(showLoaded, () => {
    loadedShown = true;
    updateRowsChrome();
  });
  onPress(showMore, () => {
    const view = model.get("task_view") ?? {};
    showTasks(showMore, view.status ?? "", (view.limit ?? ROW_STEP) + ROW_STEP);
  });

  // --- task table
  const tbody = h("tbody");
  const taskRows = new Map(); // task id -> <tr>
  const emptyNote = h("p", { class: "labnb-empty", text: "No task has started yet." });
  const table = h(
    "table",
    { class: "labnb-table labnb-tasks" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [
          ["Task"],
          ["Status"],
          ["Elapsed", "labnb-num"],
          ["CPU", "labnb-num labnb-usage"],
          ["Memory", "labnb-num labnb-usage"],
          ["Holds", "labnb-gpu"],
          ["Progress", "labnb-progress-col"],
        ].map(([name, className]) => h("th", { scope: "col", class: className, text: name })),
        h("th", { scope: "col" }, h("span", { class: "labnb-sr-only", text: "Actions" })),
      ),
    ),
    tbody,
  );

  const scroller = h("div", { class: "labnb-scroll" }, table);

  // --- log panel (follows the `log_task` trait)
  let dismissedId = null; // closed here; ignore its updates until the kernel agrees
  let opener = null; // the Logs button that opened the panel, to return focus to
  const logPanel = createLogPanel({ onClose: closeLogs, tracking: createMetricsPanel() });

  const root = h(
    "div",
    { class: "labnb labnb-run-view" },
    blockingNote,
    staleNote,
    h(
      "div",
      { class: "labnb-toolbar" },
      h("div", { class: "labnb-overall" }, overall.el),
      cancel,
    ),
    h("div", { class: "labnb-summary" }, stateBadge, counts, times, graphButton),
    failuresBox,
    typesBox,
    graph.el,
    status.el,
    filterBox,
    loadedNote,
    scroller,
    rowsNote,
    emptyNote,
    logPanel.el,
  );
  el.append(root);

  // ------------------------------------------------------------- updates

  function updateSummary() {
    const s = summaryOf();
    const total = s.total ?? 0;
    const done = s.done ?? 0;
    const loaded = s.loaded ?? 0;
    const failed = s.failed ?? 0;
    // `done` counts tasks loaded from the cache too; failed ones are apart.
    overall.update({
      value: done,
      max: total,
      segments: { loaded, done: done - loaded, failed },
      text: `${done} of ${total} done, ${loaded} loaded from cache, ${failed} failed`,
    });
    const state = s.state ?? "running";
    // Every task is counted in exactly one state.
    const unfinished =
      (s.running ?? 0) + (s.starting ?? 0) + (s.waiting ?? 0) + (s.not_started ?? 0);
    const badge =
      state === "failed" && failed && !unfinished && !s.cancelled
        ? `Done, ${failed} failed` // continue_on_failure: everything was tried
        : (STATE_TEXT[state] ?? state);
    setText(stateBadge, badge);
    stateBadge.dataset.state = state;
    root.dataset.state = state;
    // A view cut off from its kernel shows what it last knew, and no live claims.
    const live = root.dataset.disconnected !== "true";
    const extra = [
      [live ? s.starting : 0, "starting"],
      [live ? s.running : 0, "running"],
      [s.waiting, "waiting"],
      [s.cancelled, "cancelled"],
      [s.not_started, "not started"],
    ]
      .filter(([n]) => n)
      .map(([n, what]) => ` \u00b7 ${n} ${what}`)
      .join("");
    setText(
      counts,
      `${done}/${total} done \u00b7 ${loaded} loaded from cache \u00b7 ${failed} failed${extra}`,
    );
    updateFailures(s.failures ?? [], failed);
    const eta =
      live && state === "running" && s.eta_s != null
        ? ` \u00b7 ETA ${formatDuration(s.eta_s)}`
        : "";
    const asOf = live ? "" : ` \u00b7 as of ${new Date().toLocaleTimeString()}`;
    setText(times, `Elapsed ${formatDuration(s.elapsed_s)}${eta}${asOf}`);
    setDisabled(cancel, !live || state !== "running");
    if (!live) {
      setText(stateBadge, "Disconnected");
      stateBadge.dataset.state = "disconnected";
    }
    blockingNote.hidden = !s.blocking;
  }

  function updateFailures(kinds, failed) {
    failuresBox.hidden = !kinds.length;
    const parts = [h("span", { class: "labnb-failures-title", text: `${failed} failed:` })];
    for (const kind of kinds) {
      const button = h("button", {
        type: "button",
        class: "labnb-link",
        text: `${kind.type} \u00d7${kind.count}`,
        title: `Open the traceback of a task that raised ${kind.type}`,
      });
      onPress(button, () => openLogs(taskRows.get(kind.id)?.labnbTask ?? { id: kind.id }, button));
      parts.push(button);
    }
    failuresBox.replaceChildren(...parts);
  }

  function updateTypes() {
    const types = model.get("types") ?? [];
    graphButton.hidden = types.length < 2; // one type: nothing to draw
    if (!graph.el.hidden) graph.update(types);
    syncKeyed(
      typesBox,
      typeRows,
      model.get("types") ?? [],
      (t) => t.type,
      (t) => {
        const bar = createProgressBar(t.type, ["done", "failed"]);
        const name = h("span", { class: "labnb-type-name", text: t.type });
        const count = h("span", { class: "labnb-type-count" });
        const row = h("div", { class: "labnb-type" }, name, bar.el, count);
        row.labnbParts = { bar, count };
        return row;
      },
      (row, t) => {
        const { bar, count } = row.labnbParts;
        bar.update({ value: t.done, max: t.total, segments: { done: t.done, failed: t.failed } });
        setText(count, `${t.done}/${t.total}` + (t.failed ? ` \u00b7 ${t.failed} failed` : ""));
      },
    );
  }

  function createTaskRow(task) {
    const parts = {
      type: h("span", { class: "labnb-type-tag" }),
      label: h("span", { class: "labnb-label" }),
      error: h("div", { class: "labnb-error-line", hidden: true }),
      status: h("span", { class: "labnb-status-tag" }),
      elapsed: h("td", { class: "labnb-num" }),
      cpu: h("td", { class: "labnb-num labnb-usage" }),
      memory: h("td", { class: "labnb-num labnb-usage" }),
      holds: h("td", { class: "labnb-gpu" }),
      progress: h("div", { class: "labnb-task-progress" }), // filled when `progress` is set
      bar: null,
      barText: null,
      logs: h("button", { type: "button", class: "labnb-button labnb-small", text: "Logs" }),
      why: h("button", {
        type: "button",
        class: "labnb-button labnb-small",
        text: "Why?",
        title: "Why this task ran instead of loading from the cache",
      }),
      whyText: h("div", { class: "labnb-why", hidden: true }),
    };
    const tr = h(
      "tr",
      { "data-task-id": task.id },
      h("td", { class: "labnb-name" }, parts.type, parts.label, parts.error, parts.whyText),
      h("td", {}, parts.status),
      parts.elapsed,
      parts.cpu,
      parts.memory,
      parts.holds,
      h("td", { class: "labnb-progress-col" }, parts.progress),
      h("td", { class: "labnb-actions" }, parts.why, " ", parts.logs),
    );
    tr.labnbParts = parts;
    // Always read the row's latest task: the closures outlive many updates.
    onPress(parts.logs, () => openLogs(tr.labnbTask, parts.logs));
    onPress(parts.why, () => {
      if (!parts.whyText.hidden) {
        parts.whyText.hidden = true; // a second press folds it away
        return;
      }
      actions.run(parts.why, "why", { id: tr.labnbTask.id }, {
        pending: `Asking${ELLIPSIS}`,
        success: (reply) => {
          setText(parts.whyText, reply.text ?? "");
          parts.whyText.hidden = false;
          return "";
        },
        failure: "Could not say why",
      });
    });
    tr.addEventListener("click", (event) => {
      if (event.target.closest("button, a, input, select, textarea")) return;
      if (String(globalThis.getSelection?.() ?? "")) return; // selecting text, not clicking
      parts.logs.click();
    });
    return tr;
  }

  function updateTaskRow(tr, task) {
    tr.labnbTask = task;
    const p = tr.labnbParts;
    const label = String(task.label ?? task.id);
    // Labels usually read "Type(params)"; only show the type when they don't.
    const showType = Boolean(task.type) && !label.startsWith(task.type);
    setText(p.type, showType ? task.type : "");
    p.type.hidden = !showType;
    setText(p.label, label);
    setAttr(p.label, "title", label); // long labels are cut; the whole one on hover
    setText(p.error, task.error ?? "");
    setAttr(p.error, "title", task.error ?? null);
    p.error.hidden = !task.error;
    setText(p.status, STATUS_TEXT[task.status] ?? String(task.status));
    // Only a task that ran can be asked why it was not loaded.
    p.why.hidden = !["done", "failed", "starting", "running", "cancelled"].includes(task.status);
    setAttr(tr, "data-status", task.status);
    setText(p.elapsed, formatDuration(task.elapsed_s));
    setText(p.cpu, formatNumber(task.cpu_percent, "%"));
    setText(p.memory, formatNumber(task.memory_mb, " MB"));
    setText(p.holds, holdsText(task));
    const progress = task.progress;
    if (progress) {
      if (!p.bar) {
        p.bar = createProgressBar("", ["done"]);
        p.barText = h("span", { class: "labnb-bar-text" });
        p.progress.append(p.bar.el, p.barText);
      }
      setAttr(p.bar.el, "aria-label", `${label} progress`);
      const known = progress.total != null;
      const amount = known ? `${progress.n}/${progress.total}` : `${progress.n}`;
      const text = progress.desc ? `${progress.desc}: ${amount}` : amount;
      p.bar.update({ value: progress.n, max: progress.total, text });
      setText(p.barText, text);
    } else if (p.bar) {
      p.progress.replaceChildren();
      p.bar = null;
      p.barText = null;
    }
    tr.classList.toggle("labnb-selected", task.id === logPanel.id);
  }

  function showTasks(button, status, limit) {
    actions.run(button, "show_tasks", { status, limit }, {
      pending: `Loading${ELLIPSIS}`,
      success: (reply) => `Showing ${reply.shown} of ${reply.matching}`,
      failure: "Could not show those tasks",
    });
  }

  function updateFilter() {
    const s = summaryOf();
    const view = model.get("task_view") ?? {};
    const over = (s.state ?? "running") !== "running";
    const choices = [
      ["", "All", s.total],
      ["starting", "Starting", s.starting],
      ["running", "Running", s.running],
      ["failed", "Failed", s.failed],
      ["waiting", over ? "Not started" : "Waiting", over ? s.not_started : s.waiting],
      ["done", "Done", (s.done ?? 0) - (s.loaded ?? 0)],
      ["loaded", "Loaded", s.loaded],
      ["cancelled", "Cancelled", s.cancelled],
    ];
    const current = view.status ?? "";
    const buttons = [];
    for (const [key, name, count] of choices) {
      // A state with no task is not offered, unless it is the one being shown.
      if (key && !count && key !== current) continue;
      let button = filterButtons.get(key);
      if (!button) {
        button = h("button", { type: "button", class: "labnb-chip" });
        button.labnbCount = h("span", { class: "labnb-chip-count" });
        button.append(h("span", { text: name }), " ", button.labnbCount);
        onPress(button, () => showTasks(button, key, ROW_STEP));
        filterButtons.set(key, button);
      }
      button.firstChild.textContent = name; // "Waiting" becomes "Not started" at the end
      setText(button.labnbCount, String(count ?? 0));
      setAttr(button, "aria-pressed", String(key === current));
      buttons.push(button);
    }
    // Only worth a filter when there is more than one kind of task to choose from.
    filterBox.hidden = buttons.length <= 2 && !current;
    if (!filterBox.hidden) filterBox.replaceChildren(...buttons);
  }

  function updateTasks() {
    const tasks = model.get("tasks") ?? [];
    syncKeyed(tbody, taskRows, tasks, (t) => t.id, createTaskRow, updateTaskRow);
    updateRowsChrome();
  }

  function updateRowsChrome() {
    const tasks = model.get("tasks") ?? [];
    const s = summaryOf();
    const view = model.get("task_view") ?? {};
    // A rerun where everything came from the cache: one line, the table a click away.
    const allLoaded = Boolean(s.total) && s.loaded === s.total && !view.status;
    loadedNote.hidden = !allLoaded || loadedShown;
    setText(loadedText, `All ${s.total} tasks loaded from cache.`);
    table.hidden = allLoaded && !loadedShown;
    scroller.hidden = table.hidden;
    const shown = view.shown ?? tasks.length;
    const matching = view.matching ?? tasks.length;
    rowsNote.hidden = table.hidden || shown >= matching;
    setText(rowsText, `Showing ${shown} of ${matching} tasks.`);
    setText(showMore, `Show ${Math.min(ROW_STEP, matching - shown)} more`);
    updateFilter();
    // Columns only where some row has something for them: "Holds" where a task
    // was given GPUs or cores, CPU and Memory while a task runs, Progress where a
    // task reports it; a finished run's table then fits narrow windows.
    table.classList.toggle("labnb-with-holds", tasks.some((t) => t.resources));
    table.classList.toggle("labnb-with-usage", tasks.some((t) => t.status === "running"));
    table.classList.toggle("labnb-with-progress", tasks.some((t) => t.progress));
    emptyNote.hidden = tasks.length > 0;
  }

  function markSelected() {
    for (const [id, tr] of taskRows) tr.classList.toggle("labnb-selected", id === logPanel.id);
  }

  // ------------------------------------------------------------- logs

  function showLogTask() {
    const task = model.get("log_task") ?? {};
    if (!task.id) {
      // The kernel closed the panel (here or in another view of this model).
      dismissedId = null;
      if (logPanel.id != null) logPanel.hide();
    } else if (task.id !== dismissedId) {
      logPanel.show(task);
    }
    markSelected();
  }

  async function openLogs(task, button) {
    if (!task) return;
    const reply = await actions.run(button, "open_logs", { id: task.id }, {
      pending: `Opening${ELLIPSIS}`,
      failure: "Could not open the logs",
    });
    if (!reply) return;
    dismissedId = null;
    opener = button;
    const current = model.get("log_task") ?? {};
    // The kernel sets `log_task` before it answers, so it is usually here
    // already; if not, show the reply's text until it comes.
    if (current.id === task.id) logPanel.show(current);
    else logPanel.show({ id: task.id, label: task.label, status: task.status, text: reply.text });
    markSelected();
  }

  function closeLogs() {
    // Close at once; tell the kernel to stop sending this task's logs.
    dismissedId = logPanel.id;
    logPanel.hide();
    markSelected();
    if (opener?.isConnected) opener.focus({ preventScroll: true });
    opener = null;
    actions.run(null, "close_logs", {}, { failure: "Could not close the logs" });
  }

  // ------------------------------------------------------------- wiring

  updateSummary();
  updateTypes();
  updateTasks();
  showLogTask();
  const unlisten = listen(model, {
    "change:summary": () => {
      updateSummary();
      updateRowsChrome();
    },
    "change:types": updateTypes,
    "change:tasks": updateTasks,
    "change:task_view": updateRowsChrome,
    "change:log_task": showLogTask,
  });
  // Heartbeats stop once a run is over and its logs are closed: only a
  // running run is expected to beat.
  // A run owned by a run process goes on without this kernel: say how to find
  // it again, and never leave live buttons on a view that no longer reaches it.
  const followAdvice = () => {
    const runId = summaryOf().run_id;
    return runId
      ? `it stopped or restarted. Run ${runId} goes on in its own process: ` +
          "follow it with lab.runs()[-1] in a new cell."
      : "it stopped or restarted, and this run with it: re-run the cell to start again " +
          "(finished results are cached).";
  };
  const onStale = (stale) => {
    root.dataset.disconnected = stale ? "true" : "false";
    updateSummary();
    for (const button of tbody.querySelectorAll("button")) setDisabled(button, stale);
  };
  const stopHeartbeat = watchHeartbeat(
    model,
    staleNote,
    () => summaryOf().state === "running",
    followAdvice,
    onStale,
  );

  return () => {
    unlisten();
    stopHeartbeat();
    actions.dispose();
    status.dispose();
    root.remove();
  };
}

/** "GPU 0 · 4 CPUs", then the GPU's use while it runs: "GPU 0 · 63% · 1200 MB". */
export function holdsText(task) {
  if (!task.resources) return "";
  const use = [];
  if (task.gpu_percent != null) use.push(formatNumber(task.gpu_percent, "%"));
  if (task.gpu_memory_mb != null) use.push(formatNumber(task.gpu_memory_mb, " MB"));
  return [task.resources, ...use].join(" \u00b7 ");
}

export default { render };
