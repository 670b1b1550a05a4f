// Test harness: a happy-dom document, a fake anywidget model and a fake
// kernel answering `experimental.invoke`.

import { Window } from "happy-dom";

export function setupDom() {
  const window = new Window({ url: "http://localhost/" });
  globalThis.window = window;
  globalThis.document = window.document;
  globalThis.getSelection = () => window.getSelection();
  return window;
}

/** The subset of anywidget's model proxy the views use, with Backbone's event order. */
export class FakeModel {
  constructor(state) {
    this.state = structuredClone(state);
    this.handlers = new Map();
    this.saved = [];
  }
  get(name) {
    return this.state[name];
  }
  set(name, value) {
    this.state[name] = value;
    this.emit(`change:${name}`);
  }
  save_changes() {
    this.saved.push(structuredClone(this.state));
  }
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
  }
  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
  }
  emit(event) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler();
  }
  /** Kernel-side update of several traits at once: set all, then fire (like Backbone). */
  update(changes) {
    Object.assign(this.state, structuredClone(changes));
    for (const name of Object.keys(changes)) this.emit(`change:${name}`);
  }
  get listenerCount() {
    let count = 0;
    for (const set of this.handlers.values()) count += set.size;
    return count;
  }
}

/**
 * A fake kernel: `invoke` records each call; `answer(response)` answers the
 * oldest unanswered one. With `auto` (name -> msg -> response) calls are
 * answered at once (on the next microtask).
 */
export function fakeKernel(auto = {}) {
  const calls = [];
  const waiting = [];
  const invoke = (name, msg, options = {}) =>
    new Promise((resolve, reject) => {
      const call = { name, msg, signal: options.signal };
      calls.push(call);
      options.signal?.addEventListener("abort", () => reject(options.signal.reason));
      const respond = (response) => resolve([response, []]);
      if (auto[name]) queueMicrotask(() => respond(auto[name](msg)));
      else waiting.push(respond);
    });
  return {
    calls,
    experimental: { invoke },
    answer(response) {
      waiting.shift()(response);
    },
  };
}

/** Let pending promise callbacks run. */
export async function flush() {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

export const byRole = (root, role, name) =>
  [...root.querySelectorAll(`[role="${role}"]`)].filter(
    (node) => name === undefined || node.getAttribute("aria-label") === name,
  );

/** Buttons whose accessible name (aria-label, else text) is `name`. */
export const buttons = (root, name) =>
  [...root.querySelectorAll("button")].filter(
    (b) => (b.getAttribute("aria-label") ?? b.textContent.trim()) === name,
  );
