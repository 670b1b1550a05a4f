// Helpers shared by both views: DOM building, formatting, progress bars,
// keyed in-place row updates, the log panel and the status line.

/**
 * Create an element. `props` keys: `class`, `text`, `on<event>` (a listener),
 * `hidden`; anything else becomes an attribute (skipped when null/false).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "hidden") node.hidden = true;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((child) => child != null));
  return node;
}

/** Set text only when it changed: no needless DOM mutation (keeps selections). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Set or remove an attribute only when it changed (null removes). */
export function setAttr(node, name, value) {
  if (value == null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

// --------------------------------------------------------------- formatting

export const DASH = "\u2013"; // en dash: "no value", and ranges like "1–50"
export const ELLIPSIS = "\u2026";

/** Seconds as "0.4 s", "42 s", "3m 05s", "1h 02m"; null as a dash. */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const whole = Math.round(s);
  const pad = (n) => String(n).padStart(2, "0");
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  return `${Math.floor(whole / 3600)}h ${pad(Math.floor((whole % 3600) / 60))}m`;
}

/** Bytes as "512 B", "1.5 KB", "12 MB" (binary multiples, the usual file-size reading). */
export function formatBytes(bytes) {
  if (bytes == null || !Number.isFinite(bytes)) return DASH;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${value} B`;
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A number rounded for display, or a dash. */
export function formatNumber(value, suffix = "") {
  if (value == null || !Number.isFinite(value)) return DASH;
  return `${Math.round(value)}${suffix}`;
}

/** An ISO timestamp as local "YYYY-MM-DD HH:MM:SS" (locale-independent, sortable by eye). */
export function formatDate(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return iso ? String(iso) : DASH;
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** "1 task" / "3 tasks". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// ------------------------------------------------------------- progress bars

/**
 * A progress bar with `role="progressbar"`. Segments are stacked fills, e.g.
 * ["loaded", "done", "failed"]; `update({value, max, segments, text})` sets
 * aria-valuenow/max and each segment's share of `max`. With `max == null` the
 * bar is indeterminate (animated stripe, no aria-valuemax, valuetext instead).
 */
export function createProgressBar(label, segmentNames = ["done"]) {
  const fills = Object.fromEntries(
    segmentNames.map((name) => [name, h("div", { class: `labnb-fill labnb-fill-${name}` })]),
  );
  const el = h(
    "div",
    { class: "labnb-bar", role: "progressbar", "aria-label": label, "aria-valuemin": "0" },
    Object.values(fills),
  );
  return {
    el,
    update({ value, max, segments = { [segmentNames[0]]: value }, text = null }) {
      const known = max != null && Number.isFinite(max);
      setAttr(el, "aria-valuenow", value ?? 0);
      setAttr(el, "aria-valuemax", known ? max : null);
      setAttr(el, "aria-valuetext", text);
      el.classList.toggle("labnb-indeterminate", !known);
      let used = 0; // clamp so segments never overflow the track
      for (const name of segmentNames) {
        const share = known && max > 0 ? Math.max(0, (segments[name] ?? 0) / max) : 0;
        const width = Math.min(share, 1 - used);
        used += width;
        const css = `${(width * 100).toFixed(2)}%`;
        if (fills[name].style.width !== css) fills[name].style.width = css;
      }
    },
  };
}

// ------------------------------------------------------- keyed row updates

/**
 * Make `container`'s children be one node per item, in order, keyed by
 * `keyOf(item)`: existing nodes are reused and updated in place, new ones made
 * with `create(item)`, stale ones removed, and only out-of-place nodes moved
 * (the nodes forming the longest run already in order stay put). Moving a
 * node that holds focus would blur it in most browsers, so we use
 * `moveBefore` (state-preserving) where available and otherwise restore focus.
 *
 * `nodes` is the caller's Map key -> node; it is kept in sync.
 */
export function syncKeyed(container, nodes, items, keyOf, create, update) {
  const active = document.activeElement;
  const wanted = new Set();
  const order = [];
  for (const item of items) {
    const key = keyOf(item);
    if (wanted.has(key)) continue; // a duplicate key would steal the first node
    wanted.add(key);
    let node = nodes.get(key);
    if (!node) {
      node = create(item);
      nodes.set(key, node);
    }
    update(node, item);
    order.push(node);
  }
  for (const [key, node] of nodes) {
    if (!wanted.has(key)) {
      node.remove();
      nodes.delete(key);
    }
  }
  // Nodes already in the container, in their current order.
  const current = new Map();
  let index = 0;
  for (const child of container.children) current.set(child, index++);
  const stay = longestIncreasing(order.map((node) => current.get(node) ?? -1));
  // Walk backwards, inserting each moving node before its successor.
  let next = null;
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    if (!stay.has(i)) move(container, node, next);
    next = node;
  }
  if (active && active.isConnected && document.activeElement !== active) {
    active.focus({ preventScroll: true });
  }
}

function move(container, node, before) {
  if (node.parentNode === container && node.nextSibling === before) return;
  if (typeof container.moveBefore === "function" && node.parentNode === container) {
    try {
      container.moveBefore(node, before);
      return;
    } catch {
      // moveBefore refuses some cases (e.g. across documents): fall back.
    }
  }
  container.insertBefore(node, before);
}

/** Indices of a longest strictly increasing subsequence of `values` (ignoring -1). */
function longestIncreasing(values) {
  const tails = []; // tails[k]: index in values of the smallest tail of a run of length k+1
  const previous = new Array(values.length).fill(-1);
  values.forEach((value, i) => {
    if (value < 0) return;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[tails[mid]] < value) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) previous[i] = tails[lo - 1];
    tails[lo] = i;
  });
  const keep = new Set();
  for (let i = tails.at(-1) ?? -1; i >= 0; i = previous[i]) keep.add(i);
  return keep;
}

// ------------------------------------------------------------ status line

/**
 * The `role="status"` line under a view's toolbar, for click feedback.
 * Success notes fade after a while; errors and warnings stay until replaced.
 */
export function createStatus() {
  const el = h("div", { class: "labnb-status", role: "status" });
  let timer = null;
  const show = (text, kind = "info") => {
    clearTimeout(timer);
    setText(el, text);
    el.dataset.kind = kind;
    if (kind === "success" && text) timer = setTimeout(() => show("", "info"), 6000);
  };
  return { el, show, dispose: () => clearTimeout(timer) };
}

/** An SVG element, as `h` makes HTML ones (the compare chart and the task graph). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

// --------------------------------------------------------------- log panel

/**
 * The log panel: a heading, a "Close logs" button, optionally a `tracking`
 * part (js/metrics.js: the task's metrics and artifacts) and a `role="log"` <pre>.
 * `show({label, status, text, metrics, artifacts, models})` replaces or
 * extends the text; when the new text extends the old one only the new part
 * is appended. It keeps the view scrolled to the bottom unless the user has
 * scrolled up to read.
 */
/** A logged line as labnb's capture writes it: "14:03:07 WARNING name: message". */
const LOG_RECORD = /^(\d\d:\d\d:\d\d) (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([^\n:]*:)/;

/**
 * Append `text` to a log `<pre>`: a logged line gets its time and level set
 * apart (dim, the level coloured by severity), so logging does not read like
 * print; printed text is appended as it is. `atLineStart` says whether the
 * text before ended a line; returns the same for the text after.
 */
export function appendLog(pre, text, atLineStart) {
  let start = atLineStart;
  for (const line of text.split(/(?<=\n)/)) {
    const found = start ? LOG_RECORD.exec(line) : null;
    if (found) {
      const [prefix, time, level, name] = found;
      const meta = h("span", { class: "labnb-log-meta", "data-level": level });
      meta.append(`${time} `, h("span", { class: "labnb-log-level", text: level }), ` ${name}`);
      pre.append(meta, line.slice(prefix.length));
    } else if (line) {
      pre.append(line);
    }
    start = line.endsWith("\n");
  }
  return start;
}

export function createLogPanel({ onClose, tracking = null }) {
  const title = h("span", { class: "labnb-log-title" });
  const state = h("span", { class: "labnb-log-state" });
  const close = h("button", {
    type: "button",
    class: "labnb-button labnb-close",
    "aria-label": "Close logs",
    text: "Close",
    onclick: () => onClose(),
  });
  const pre = h("pre", { class: "labnb-log", role: "log", tabindex: "0" });
  const el = h(
    "section",
    { class: "labnb-logs", hidden: true },
    h("div", { class: "labnb-log-head" }, title, state, close),
    tracking?.el,
    pre,
  );
  let shownId = null;
  let shownText = "";
  let atLineStart = true;
  return {
    el,
    close,
    get id() {
      return shownId;
    },
    show({ id, label, status, text, metrics, artifacts, models }) {
      const fresh = id !== shownId;
      if (fresh) tracking?.clear(); // another task's rows must not be reused
      tracking?.show({ metrics, artifacts, models });
      shownId = id;
      setText(title, `Logs of ${label}`);
      setAttr(pre, "aria-label", `Logs of ${label}`);
      setText(state, status ? `(${status})` : "");
      el.hidden = false;
      const body = text ?? "";
      // Within a few pixels of the bottom counts as "following" the log.
      const follow = fresh || pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
      if (!fresh && body.startsWith(shownText)) {
        if (body.length > shownText.length) {
          atLineStart = appendLog(pre, body.slice(shownText.length), atLineStart);
        }
      } else {
        pre.textContent = "";
        atLineStart = appendLog(pre, body, true);
      }
      shownText = body;
      if (follow) pre.scrollTop = pre.scrollHeight;
    },
    hide() {
      shownId = null;
      shownText = "";
      atLineStart = true;
      pre.textContent = "";
      tracking?.clear();
      el.hidden = true;
    },
  };
}

// ---------------------------------------------------------------- misc

/** Call `fn` once `wait` ms have passed without another call; `.cancel()` drops it. */
export function debounce(fn, wait) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/**
 * Subscribe to model events; returns a function removing every listener
 * (the view's cleanup calls it, so an unmounted view leaves nothing behind).
 */
export function listen(model, handlers) {
  for (const [event, handler] of Object.entries(handlers)) model.on(event, handler);
  return () => {
    for (const [event, handler] of Object.entries(handlers)) model.off(event, handler);
  };
}

/**
 * A note shown when the kernel's heartbeat stops: the kernel increments
 * `heartbeat` every second while the view lives, so silence means updates no
 * longer arrive (kernel dead or restarted, or the page lost its comm). We only
 * start judging after the first beat: a kernel that never beats tells nothing.
 * `expected()` says whether beats should be arriving right now.
 */
export function watchHeartbeat(
  model,
  note,
  expected = () => true,
  advice = () => "if it was restarted, re-run the cell to reconnect.",
  onStale = () => {},
) {
  let lastBeat = null;
  let wasStale = false;
  const check = () => {
    const silent = lastBeat == null ? 0 : (Date.now() - lastBeat) / 1000;
    const stale = expected() && silent > 5;
    note.hidden = !stale;
    if (stale) {
      setText(note, `No update from the kernel for ${Math.round(silent)} s: ${advice()}`);
    }
    if (stale !== wasStale) {
      wasStale = stale;
      onStale(stale);
    }
  };
  const onBeat = () => {
    lastBeat = Date.now();
    check();
  };
  const timer = setInterval(check, 1000);
  model.on("change:heartbeat", onBeat);
  return () => {
    clearInterval(timer);
    model.off("change:heartbeat", onBeat);
  };
}
