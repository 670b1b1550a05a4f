// CacheView: the cache browser. Traits and commands: docs/widget-protocol.md.
//
// The kernel filters, sorts and pages; this view shows one page, keyed by
// task id, and edits the `query` trait. Both rows and the cells within a row
// are keyed (cells by column), so a new page or a new set of parameter
// columns updates the existing <tr>s, checkboxes and buttons in place.
//
// The filter box's text is read by the kernel (seed=3, C>1, free words); this
// view shows how it was read (`filter_info`). A selection lasts across pages
// until the filter or type changes; "Select all N matching" selects by the
// query, and uncaching it sends the query and N, never the ids.

import { createActions, onPress, setDisabled } from "./actions.js";
import {
  createLogPanel,
  createStatus,
  DASH,
  debounce,
  ELLIPSIS,
  formatBytes,
  formatDate,
  formatDuration,
  h,
  listen,
  plural,
  setAttr,
  setText,
  syncKeyed,
  watchHeartbeat,
} from "./common.js";
import { createComparePanel } from "./compare.js";
import { createMetricsPanel } from "./metrics.js";

const DEFAULT_QUERY = {
  text: "",
  type: "",
  sort: "started",
  descending: true,
  page: 0,
  page_size: 50,
};
const FILTER_DELAY_MS = 250;
const PAGE_SIZES = [25, 50, 100, 200, 500];
let viewCount = 0; // unique ids for aria-describedby within the page

/** 20000 → "20,000" (locale-independent: tests and screenshots read the same). */
export function formatCount(value) {
  return Number(value ?? 0).toLocaleString("en-US");
}

/** How the kernel read the filter: its error, what it applies, or the syntax hint. */
export function filterNoteText(info) {
  if (!info) return "";
  if (info.error) return info.error;
  const parts = [];
  if (info.terms?.length) parts.push(info.terms.join(", "));
  if (info.words?.length) parts.push(`text has ${info.words.map((w) => `\u201c${w}\u201d`).join(", ")}`);
  return parts.length ? `Matching ${parts.join("; ")}` : (info.hint ?? "");
}

/** How a cached task is named in the UI ("Type(a=1, b=x)"), e.g. in "Logs of …". */
export function rowLabel(row) {
  if (row.label) return String(row.label);
  const params = Object.entries(row.params ?? {}).map(([name, value]) => `${name}=${value}`);
  return `${row.type}(${params.join(", ")})`;
}

function removedText(reply) {
  const removed = reply.removed ?? 0;
  const unknown = reply.unknown?.length ?? 0;
  let text = `Removed ${plural(removed, "task")} from the cache.`;
  if (unknown) text += ` ${plural(unknown, "task")} not in this lab's storage.`;
  return text;
}

function render({ model, el, experimental }) {
  const status = createStatus();
  const actions = createActions({
    experimental,
    status,
    isBusy: () => Boolean(model.get("kernel_busy")),
  });
  const queryOf = () => ({ ...DEFAULT_QUERY, ...(model.get("query") ?? {}) });
  function setQuery(changes) {
    model.set("query", { ...queryOf(), ...changes });
    model.save_changes();
  }

  const selected = new Set(); // ids checked, on any page of the current filter
  let allMatching = false; // every row matching the filter is selected (by query)
  let scope = null; // the filter and type the selection belongs to
  const staleNote = h("p", { class: "labnb-note labnb-warning", hidden: true });

  // --- type groups: "All types" plus one toggle per type
  const allChip = h("button", { type: "button", class: "labnb-chip" });
  const allName = h("span", { text: "All types" });
  const allCount = h("span", { class: "labnb-chip-count" });
  allChip.append(allName, " ", allCount);
  onPress(allChip, () => setQuery({ type: "", page: 0 }));
  const groupList = h("span", { class: "labnb-chip-list" });
  const groupChips = new Map();
  const groupsBox = h(
    "div",
    { class: "labnb-groups", role: "group", "aria-label": "Task types" },
    allChip,
    groupList,
  );

  // --- toolbar: filter, refresh, bulk uncache
  const filter = h("input", {
    type: "search",
    class: "labnb-filter",
    placeholder: `seed=3 C>1 model=svm${ELLIPSIS}`,
    "aria-label": "Filter",
    "aria-describedby": `labnb-filter-note-${++viewCount}`,
    spellcheck: "false",
  });
  const filterNote = h("p", {
    class: "labnb-filter-note",
    id: `labnb-filter-note-${viewCount}`,
    "aria-live": "polite",
  });
  const applyFilter = debounce(() => {
    if (filter.value !== queryOf().text) setQuery({ text: filter.value, page: 0 });
  }, FILTER_DELAY_MS);
  filter.addEventListener("input", applyFilter);
  filter.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      applyFilter.cancel();
      if (filter.value !== queryOf().text) setQuery({ text: filter.value, page: 0 });
    }
  });
  const refresh = h("button", { type: "button", class: "labnb-button", text: "Refresh" });
  onPress(refresh, () =>
    actions.run(refresh, "refresh", {}, {
      pending: `Refreshing${ELLIPSIS}`,
      success: () => "Refreshed.",
      failure: "Refresh failed",
    }),
  );
  // --- compare: a metric against a parameter, as a chart
  const compareButton = h("button", {
    type: "button",
    class: "labnb-button",
    text: "Compare",
    "aria-expanded": "false",
  });
  const compare = createComparePanel({
    onChange: (axes) =>
      actions.run(null, "compare", axes, {
        success: (reply) => {
          compare.draw(reply);
          return "";
        },
        failure: "Could not draw the comparison",
      }),
  });
  onPress(compareButton, () => {
    compare.setColumns(model.get("columns") ?? []);
    setAttr(compareButton, "aria-expanded", String(compare.toggle()));
  });
  const selectionCount = h("span", { class: "labnb-selection-count" });
  const uncacheSelected = h("button", {
    type: "button",
    class: "labnb-button labnb-danger",
    text: "Uncache selected",
  });
  onPress(uncacheSelected, openConfirm);
  const selectMatching = h("button", { type: "button", class: "labnb-button", hidden: true });
  onPress(selectMatching, () => {
    allMatching = true;
    updateSelection();
  });
  const clearSelection = h("button", {
    type: "button",
    class: "labnb-button",
    text: "Clear selection",
    hidden: true,
  });
  onPress(clearSelection, () => {
    selected.clear();
    allMatching = false;
    updateSelection();
  });

  // --- inline confirmation of "Uncache selected" (no window.confirm: it
  // blocks the page, and some front ends suppress it)
  const confirmText = h("span", { class: "labnb-confirm-text" });
  const confirm = h("button", {
    type: "button",
    class: "labnb-button labnb-danger",
    text: "Confirm",
  });
  const keep = h("button", { type: "button", class: "labnb-button", text: "Keep" });
  const confirmBar = h(
    "div",
    { class: "labnb-confirm", role: "group", "aria-label": "Confirm uncache", hidden: true },
    confirmText,
    confirm,
    keep,
  );
  onPress(confirm, uncacheSelection);
  onPress(keep, closeConfirm);

  // --- table: header cells and row cells are keyed by column key
  const headRow = h("tr");
  const tbody = h("tbody");
  const rowNodes = new Map(); // task id -> <tr>
  const table = h("table", { class: "labnb-table labnb-cache" }, h("thead", {}, headRow), tbody);
  const selectAll = h("input", {
    type: "checkbox",
    class: "labnb-check",
    "aria-label": "Select all rows on this page",
  });
  selectAll.addEventListener("change", () => {
    if (!selectAll.checked && allMatching) {
      allMatching = false;
      selected.clear();
    }
    for (const row of model.get("rows") ?? []) {
      if (selectAll.checked) selected.add(row.id);
      else selected.delete(row.id);
    }
    updateSelection();
  });
  const emptyNote = h("p", { class: "labnb-empty", hidden: true });

  // --- paging
  const prev = h("button", { type: "button", class: "labnb-button", text: "Prev" });
  const next = h("button", { type: "button", class: "labnb-button", text: "Next" });
  const range = h("span", { class: "labnb-range" });
  onPress(prev, () => setQuery({ page: Math.max(0, queryOf().page - 1) }));
  onPress(next, () => setQuery({ page: queryOf().page + 1 }));
  const pageInput = h("input", {
    type: "number",
    class: "labnb-page-input",
    min: "1",
    step: "1",
    "aria-label": "Page",
  });
  const pageCount = h("span", { class: "labnb-page-count" });
  const goToPage = () => {
    const wanted = Math.round(Number(pageInput.value));
    if (!Number.isFinite(wanted)) return updatePager();
    const page = Math.min(Math.max(1, wanted), pages()) - 1;
    if (page !== queryOf().page) setQuery({ page });
    else updatePager();
  };
  pageInput.addEventListener("change", goToPage);
  pageInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") goToPage();
  });
  const pageSize = h(
    "select",
    { class: "labnb-page-size", "aria-label": "Rows per page" },
    PAGE_SIZES.map((size) => h("option", { value: String(size), text: String(size) })),
  );
  pageSize.addEventListener("change", () => {
    const size = Number(pageSize.value);
    const q = queryOf();
    // Keep the first row shown in view: the page that holds it at the new size.
    setQuery({ page_size: size, page: Math.floor((q.page * q.page_size) / size) });
  });
  const pageJump = h(
    "span",
    { class: "labnb-page-jump" },
    h("label", { text: "Page" }, " ", pageInput),
    " ",
    pageCount,
  );
  const sizeLabel = h("label", { class: "labnb-page-size-label", text: "Rows per page " }, pageSize);

  let opener = null; // the Logs button that opened the panel, to return focus to
  const logPanel = createLogPanel({
    tracking: createMetricsPanel(),
    onClose() {
      logPanel.hide();
      if (opener?.isConnected) opener.focus({ preventScroll: true });
      opener = null;
      markLogRow();
    },
  });

  const root = h(
    "div",
    { class: "labnb labnb-cache-view" },
    staleNote,
    groupsBox,
    h(
      "div",
      { class: "labnb-toolbar" },
      filter,
      refresh,
      compareButton,
      h("span", { class: "labnb-spacer" }),
      selectionCount,
      selectMatching,
      clearSelection,
      uncacheSelected,
    ),
    filterNote,
    compare.el,
    confirmBar,
    status.el,
    h("div", { class: "labnb-scroll" }, table),
    emptyNote,
    h("div", { class: "labnb-pager" }, prev, range, next, pageJump, sizeLabel),
    logPanel.el,
  );
  el.append(root);

  // ------------------------------------------------------------- columns

  const fixedStart = [
    {
      key: "select",
      header: () => h("th", { class: "labnb-select" }, selectAll),
      create: (row) => {
        const box = h("input", { type: "checkbox", class: "labnb-check" });
        const td = h("td", { class: "labnb-select" }, box);
        box.addEventListener("change", () => {
          const id = td.closest("tr")?.dataset.taskId;
          if (!id) return;
          if (allMatching) {
            // Unticking one row of "all matching": the page's rows stay selected.
            allMatching = false;
            selected.clear();
            for (const row of model.get("rows") ?? []) selected.add(row.id);
          }
          if (box.checked) selected.add(id);
          else selected.delete(id);
          updateSelection();
        });
        td.labnbBox = box;
        return td;
      },
      update: (td, row) => {
        setAttr(td.labnbBox, "aria-label", `Select ${rowLabel(row)}`);
        td.labnbBox.checked = allMatching || selected.has(row.id);
      },
    },
    {
      key: "f:type",
      sort: "type",
      label: "Type",
      // The type, and a mark on entries an older version of it made.
      create: () => h("td", {}, h("span"), h("span", { class: "labnb-version-mark", hidden: true })),
      update: (td, row) => {
        const [name, mark] = td.children;
        setText(name, row.type);
        const older = row.version === "older" || row.version === "stale";
        mark.hidden = !older;
        // Empty when hidden: the cell's text is then the type alone (copying, tests).
        setText(mark, !older ? "" : row.version === "stale" ? "stale" : "older version");
        setAttr(mark, "title", older ? (row.version_note ?? null) : null);
      },
    },
  ];
  const fixedEnd = [
    {
      key: "f:started",
      sort: "started",
      label: "Started",
      text: (row) => formatDate(row.started),
      title: (row) => row.started,
    },
    {
      key: "f:duration",
      sort: "duration_s",
      label: "Duration",
      className: "labnb-num",
      text: (row) => formatDuration(row.duration_s),
    },
    {
      key: "f:size",
      sort: "size_bytes",
      label: "Size",
      className: "labnb-num",
      text: (row) => formatBytes(row.size_bytes),
      title: (row) => (row.size_bytes == null ? null : `${row.size_bytes} bytes`),
    },
    {
      key: "actions",
      header: () =>
        h("th", { class: "labnb-actions" }, h("span", { class: "labnb-sr-only", text: "Actions" })),
      create: () => {
        const logs = h("button", {
          type: "button",
          class: "labnb-button labnb-small",
          text: "Logs",
        });
        const uncache = h("button", {
          type: "button",
          class: "labnb-button labnb-small labnb-danger",
          text: "Uncache",
        });
        const td = h("td", { class: "labnb-actions" }, logs, uncache);
        // Read the row's current data at click time: the <tr> outlives updates.
        const rowOf = () => td.closest("tr")?.labnbRow;
        onPress(logs, () => showLogs(rowOf(), logs));
        onPress(uncache, () => {
          const row = rowOf();
          if (!row) return;
          actions.run(uncache, "uncache", { ids: [row.id] }, {
            pending: `Uncaching${ELLIPSIS}`,
            success: removedText,
            failure: "Uncache failed",
          });
        });
        return td;
      },
      update: () => {},
    },
  ];

  let columnKey = null;
  let columns = [];
  function columnSpecs() {
    const params = model.get("columns") ?? [];
    const key = JSON.stringify(params);
    if (key !== columnKey) {
      columnKey = key;
      columns = [
        ...fixedStart,
        ...params.map((name) => ({
          key: `p:${name}`,
          sort: name,
          label: name.startsWith("params.") ? name.slice(7) : name,
          className: "labnb-param",
          // Long values are cut by CSS; the whole value is on hover.
          create: () => h("td", { class: "labnb-param" }, h("span", { class: "labnb-cut" })),
          update: (td, row) => {
            const text = row.params?.[name] ?? DASH;
            setText(td.firstChild, text);
            setAttr(td, "title", text === DASH ? null : text);
          },
        })),
        ...fixedEnd,
      ];
    }
    return columns;
  }

  function createCell(spec, row) {
    return spec.create ? spec.create(row) : h("td", { class: spec.className });
  }

  function updateCell(td, spec, row) {
    if (spec.update) return spec.update(td, row);
    setText(td, spec.text(row));
    setAttr(td, "title", spec.title?.(row) ?? null);
  }

  function createHeader(spec) {
    if (spec.header) return spec.header();
    const arrow = h("span", { class: "labnb-sort-arrow", "aria-hidden": "true" });
    // The whole header cell is the button, not just its text.
    const button = h("button", { type: "button", class: "labnb-sort" }, spec.label, arrow);
    const th = h("th", { scope: "col", class: `labnb-sortable ${spec.className ?? ""}` }, button);
    th.labnbArrow = arrow;
    onPress(button, () => {
      const q = queryOf();
      setQuery(
        q.sort === spec.sort
          ? { descending: !q.descending, page: 0 }
          : { sort: spec.sort, descending: false, page: 0 },
      );
    });
    return th;
  }

  function updateHeader(th, spec) {
    if (!spec.sort) return;
    const q = queryOf();
    const active = q.sort === spec.sort;
    setAttr(th, "aria-sort", active ? (q.descending ? "descending" : "ascending") : null);
    setText(th.labnbArrow, active ? (q.descending ? " \u25bc" : " \u25b2") : "");
  }

  // ------------------------------------------------------------- updates

  const headCells = new Map();
  function updateHead() {
    syncKeyed(headRow, headCells, columnSpecs(), (spec) => spec.key, createHeader, updateHeader);
  }

  function createRow(row) {
    const tr = h("tr", { "data-task-id": row.id });
    tr.labnbCells = new Map();
    return tr;
  }

  function updateRow(tr, row) {
    tr.labnbRow = row;
    syncKeyed(
      tr,
      tr.labnbCells,
      columnSpecs(),
      (spec) => spec.key,
      (spec) => createCell(spec, row),
      (td, spec) => updateCell(td, spec, row),
    );
  }

  function updateRows() {
    const rows = model.get("rows") ?? [];
    updateHead();
    syncKeyed(tbody, rowNodes, rows, (row) => row.id, createRow, updateRow);
    updateSelection();
    updatePager();
    markLogRow();
    const total = model.get("total_rows") ?? 0;
    emptyNote.hidden = total > 0 || rows.length > 0;
    const anything = (model.get("groups") ?? []).some((group) => (group.cached ?? group.count) > 0);
    const unread = Boolean(model.get("filter_info")?.error);
    setText(
      emptyNote,
      !anything
        ? "The cache is empty."
        : unread
          ? "No matches: the filter above could not be read."
          : "No cached task matches.",
    );
  }

  function updateGroups() {
    const groups = model.get("groups") ?? [];
    const type = queryOf().type;
    setText(allCount, formatCount(groups.reduce((sum, group) => sum + (group.count ?? 0), 0)));
    setAttr(allChip, "aria-pressed", String(!type));
    syncKeyed(
      groupList,
      groupChips,
      groups,
      (group) => group.type,
      (group) => {
        const chip = h("button", { type: "button", class: "labnb-chip" });
        chip.labnbCount = h("span", { class: "labnb-chip-count" });
        chip.append(h("span", { text: group.type }), " ", chip.labnbCount);
        // Clicking the active type shows all types again.
        onPress(chip, () =>
          setQuery({ type: queryOf().type === group.type ? "" : group.type, page: 0 }),
        );
        return chip;
      },
      (chip, group) => {
        setText(chip.labnbCount, formatCount(group.count));
        setAttr(chip, "aria-pressed", String(group.type === type));
      },
    );
  }

  function pages() {
    const size = Math.max(1, queryOf().page_size);
    return Math.max(1, Math.ceil((model.get("total_rows") ?? 0) / size));
  }

  function updatePager() {
    const q = queryOf();
    const total = model.get("total_rows") ?? 0;
    const size = Math.max(1, q.page_size);
    const first = q.page * size + 1;
    const last = Math.min(total, (q.page + 1) * size);
    setText(
      range,
      total ? `rows ${formatCount(first)}\u2013${formatCount(last)} of ${formatCount(total)}` : "No matches",
    );
    setDisabled(prev, q.page <= 0);
    setDisabled(next, (q.page + 1) * size >= total);
    if (document.activeElement !== pageInput) pageInput.value = String(q.page + 1);
    setAttr(pageInput, "max", pages());
    setText(pageCount, `of ${formatCount(pages())}`);
    pageJump.hidden = pages() <= 1;
    if (![...pageSize.options].some((option) => Number(option.value) === size)) {
      pageSize.append(h("option", { value: String(size), text: String(size) }));
    }
    pageSize.value = String(size);
  }

  function updateQuery() {
    const q = queryOf();
    // Don't fight the user's typing; take the kernel's text otherwise.
    if (document.activeElement !== filter && filter.value !== q.text) filter.value = q.text;
    const now = JSON.stringify([q.text, q.type]);
    if (scope !== null && scope !== now) {
      // Another filter: what was selected under the old one is not what is shown.
      selected.clear();
      allMatching = false;
      updateSelection();
    }
    scope = now;
    updateHead();
    updateGroups();
    updatePager();
  }

  /** After rows were removed the page may lie past the end: go to the last one. */
  function clampPage() {
    const q = queryOf();
    const total = model.get("total_rows") ?? 0;
    const size = Math.max(1, q.page_size);
    if (q.page > 0 && q.page * size >= total) {
      setQuery({ page: Math.max(0, Math.ceil(total / size) - 1) });
    }
  }

  function updateSelection() {
    const rows = model.get("rows") ?? [];
    const total = model.get("total_rows") ?? 0;
    if (allMatching && total === 0) allMatching = false;
    for (const [id, tr] of rowNodes) {
      const box = tr.labnbCells.get("select")?.labnbBox;
      if (box) box.checked = allMatching || selected.has(id);
    }
    const onPage = allMatching ? rows.length : rows.filter((row) => selected.has(row.id)).length;
    selectAll.checked = rows.length > 0 && onPage === rows.length;
    selectAll.indeterminate = onPage > 0 && onPage < rows.length;
    const count = allMatching ? total : selected.size;
    const elsewhere = allMatching ? 0 : selected.size - onPage;
    setText(
      selectionCount,
      allMatching
        ? `All ${formatCount(total)} matching selected`
        : count
          ? `${formatCount(count)} selected${elsewhere ? ` (${formatCount(elsewhere)} on other pages)` : ""}`
          : "",
    );
    selectMatching.hidden = allMatching || !selectAll.checked || total <= rows.length;
    setText(selectMatching, `Select all ${formatCount(total)} matching`);
    clearSelection.hidden = count === 0;
    const removing = Boolean(model.get("uncaching")?.running);
    setDisabled(uncacheSelected, count === 0 || removing);
    if (count === 0) {
      closeConfirm({ refocus: false });
    } else {
      setText(
        confirmText,
        (allMatching
          ? `Remove all ${formatCount(total)} matching tasks from the cache? `
          : `Remove ${plural(count, "selected task")} from the cache? `) +
          "Their results will be computed again when next needed.",
      );
    }
  }

  // ------------------------------------------------------- confirm, uncache

  function openConfirm() {
    if (selected.size === 0 && !allMatching) return;
    updateSelection();
    confirmBar.hidden = false;
    keep.focus({ preventScroll: true }); // the safe choice has focus
  }

  function closeConfirm({ refocus = true } = {}) {
    if (confirmBar.hidden) return;
    const hadFocus = confirmBar.contains(document.activeElement);
    confirmBar.hidden = true;
    if (refocus || hadFocus) uncacheSelected.focus({ preventScroll: true });
  }

  async function uncacheSelection() {
    if (allMatching) return uncacheMatching();
    const ids = [...selected];
    if (ids.length === 0) return;
    const reply = await actions.run(confirm, "uncache", { ids }, {
      pending: `Uncaching${ELLIPSIS}`,
      success: removedText,
      failure: "Uncache failed",
    });
    if (!reply) return; // the bar stays open to try again
    for (const id of ids) selected.delete(id);
    updateSelection();
    closeConfirm();
  }

  async function uncacheMatching() {
    const q = queryOf();
    const expected = model.get("total_rows") ?? 0;
    const reply = await actions.run(
      confirm,
      "uncache_matching",
      { text: q.text, type: q.type, expected },
      {
        pending: `Uncaching${ELLIPSIS}`,
        success: (r) => `Removing ${plural(r.removing ?? expected, "task")} from the cache${ELLIPSIS}`,
        failure: "Uncache failed",
      },
    );
    if (!reply) return; // the bar stays open: look again, confirm again
    selected.clear();
    allMatching = false;
    updateSelection();
    closeConfirm();
  }

  /** Progress of an "uncache all matching" the kernel runs in batches. */
  let wasRemoving = false;
  function updateUncaching() {
    const state = model.get("uncaching") ?? {};
    if (state.running) {
      wasRemoving = true;
      status.show(
        `Uncaching${ELLIPSIS} ${formatCount(state.removed)} of ${formatCount(state.total)} removed`,
        "busy",
      );
    } else if (wasRemoving) {
      wasRemoving = false;
      if (state.error) status.show(`Uncache stopped: ${state.error}`, "error");
      else {
        const removed = state.removed ?? 0;
        const noun = removed === 1 ? "task" : "tasks";
        status.show(`Removed ${formatCount(removed)} ${noun} from the cache.`, "success");
      }
    }
    updateSelection();
  }

  function updateFilterNote() {
    const info = model.get("filter_info");
    setText(filterNote, filterNoteText(info));
    filterNote.classList.toggle("labnb-filter-error", Boolean(info?.error));
    setAttr(filter, "aria-invalid", info?.error ? "true" : null);
  }

  // ---------------------------------------------------------------- logs

  async function showLogs(row, button) {
    if (!row) return;
    const reply = await actions.run(button, "logs", { id: row.id }, {
      pending: `Opening${ELLIPSIS}`,
      failure: "Could not read the logs",
    });
    if (!reply) return;
    opener = button;
    logPanel.show({
      id: row.id,
      label: rowLabel(row),
      status: "",
      text: reply.text ?? "",
      metrics: reply.metrics,
      artifacts: reply.artifacts,
      models: reply.models,
    });
    markLogRow();
  }

  function markLogRow() {
    for (const [id, tr] of rowNodes) tr.classList.toggle("labnb-selected", id === logPanel.id);
  }

  // ---------------------------------------------------------------- wiring

  filter.value = queryOf().text;
  updateFilterNote();
  updateGroups();
  updateRows();
  updateQuery();
  const onData = () => {
    updateRows();
    clampPage();
  };
  const unlisten = listen(model, {
    "change:groups": () => {
      updateGroups();
      updateRows(); // the empty-cache note depends on groups
    },
    "change:columns": () => {
      updateRows();
      if (!compare.el.hidden) compare.setColumns(model.get("columns") ?? []);
    },
    "change:rows": () => {
      onData();
      if (!compare.el.hidden) compare.ask(); // the filter or the cache changed
    },
    "change:total_rows": onData,
    "change:query": updateQuery,
    "change:filter_info": () => {
      updateFilterNote();
      updateRows(); // the empty note says whether the filter could be read
    },
    "change:uncaching": updateUncaching,
  });
  const stopHeartbeat = watchHeartbeat(model, staleNote);

  return () => {
    unlisten();
    stopHeartbeat();
    applyFilter.cancel();
    actions.dispose();
    status.dispose();
    root.remove();
  };
}

export default { render };
