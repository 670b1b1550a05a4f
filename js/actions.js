// Clicks that ask the kernel to do something, with the click states of
// docs/widget-protocol.md: pending until the kernel answers; after ~2 s, if
// the kernel is busy, say the click waits (and keep waiting); otherwise give
// up after ~5 s and say the click was not delivered.
//
// Buttons are disabled with aria-disabled rather than the `disabled`
// property: a natively disabled button drops keyboard focus, and these
// buttons are often disabled while focused (pending, last page, ...).

import { setAttr, setText } from "./common.js";

export const BUSY_TEXT =
  "The kernel is busy; your click will be handled when the running cell finishes";
export const LOST_TEXT =
  "Not delivered: the kernel did not receive this click. Re-run the cell to reconnect.";

export const TIMING = {
  busyAfterMs: 2000, // say "busy" only when the answer is this late
  giveUpAfterMs: 5000, // give up this long after the click, unless the kernel is busy
  graceAfterBusyMs: 3000, // once the kernel stops being busy, wait this much more
  tickMs: 250,
};

// ------------------------------------------------------------ button states

function applyState(button) {
  const pending = button.labnbPendingText != null;
  setAttr(button, "aria-disabled", button.labnbOff || pending ? "true" : null);
  setAttr(button, "aria-busy", pending ? "true" : null);
}

/** Enable or disable a button (composes with the pending state). */
export function setDisabled(button, off) {
  button.labnbOff = Boolean(off);
  applyState(button);
}

/** Whether a click on `button` must be ignored (disabled or pending). */
export function isInactive(button) {
  return Boolean(button.labnbOff) || button.labnbPendingText != null;
}

/** Run `handler` on clicks, except while the button is disabled or pending. */
export function onPress(button, handler) {
  button.addEventListener("click", (event) => {
    if (isInactive(button)) {
      event.preventDefault();
      return;
    }
    handler(event);
  });
}

function setPending(button, text) {
  button.labnbPendingText = text;
  button.labnbIdleText = button.textContent;
  setText(button, text);
  applyState(button);
}

function clearPending(button) {
  if (button.labnbPendingText == null) return;
  setText(button, button.labnbIdleText);
  button.labnbPendingText = null;
  applyState(button);
}

// ----------------------------------------------------------------- actions

const UNMOUNTED = Symbol("view unmounted");
const GAVE_UP = Symbol("no answer");

/**
 * `createActions({experimental, status, isBusy})` → `{run, dispose}`.
 *
 * `run(button, name, msg, options)` sends command `name` and resolves to the
 * kernel's reply when it is `{ok: true, ...}`, else to null (the status line
 * then says why). Options: `pending` (button text while waiting), `success`
 * (reply → status text), `failure` (prefix of error messages).
 * `button` may be null (e.g. a row click): then only the status line reports.
 */
export function createActions({ experimental, status, isBusy, timing = TIMING }) {
  const inFlight = new Set();

  async function run(button, name, msg = {}, options = {}) {
    const { pending = `${button?.textContent ?? "Sending"}${"\u2026"}`, success, failure } =
      options;
    if (button && isInactive(button)) return null;
    const invoke = experimental?.invoke;
    if (typeof invoke !== "function") {
      status.show("This notebook front end cannot send clicks to the kernel.", "error");
      return null;
    }
    if (button) setPending(button, pending);
    const controller = new AbortController();
    inFlight.add(controller);
    // We own the signal, so anywidget's default 3 s timeout does not apply.
    const started = Date.now();
    let deadline = started + timing.giveUpAfterMs;
    let saidBusy = false;
    const timer = setInterval(() => {
      const now = Date.now();
      if (isBusy()) {
        deadline = Math.max(deadline, now + timing.graceAfterBusyMs);
        if (!saidBusy && now - started >= timing.busyAfterMs) {
          saidBusy = true;
          status.show(BUSY_TEXT, "busy");
        }
      } else if (now >= deadline) {
        controller.abort(GAVE_UP);
      }
    }, timing.tickMs);

    let reply = null;
    let outcome; // "ok" | "error" | "lost" | "unmounted"
    try {
      const answer = await invoke(name, msg, { signal: controller.signal });
      // anywidget resolves with [response, buffers].
      reply = Array.isArray(answer) ? answer[0] : answer;
      outcome = reply && reply.ok === true ? "ok" : "error";
    } catch (error) {
      if (controller.signal.reason === UNMOUNTED) outcome = "unmounted";
      else {
        if (controller.signal.reason !== GAVE_UP) console.warn("[labnb]", name, error);
        outcome = "lost";
      }
    } finally {
      clearInterval(timer);
      inFlight.delete(controller);
    }
    if (outcome === "unmounted") return null;
    if (button) clearPending(button);
    if (outcome === "lost") {
      status.show(LOST_TEXT, "error");
      return null;
    }
    if (outcome === "error") {
      const why = reply?.error ?? "unexpected reply from the kernel";
      status.show(`${failure ?? `${name} failed`}: ${why}`, "error");
      return null;
    }
    if (success) status.show(success(reply), "success");
    else if (saidBusy) status.show("", "info"); // the wait is over
    return reply;
  }

  function dispose() {
    for (const controller of inFlight) controller.abort(UNMOUNTED);
    inFlight.clear();
  }

  return { run, dispose };
}
