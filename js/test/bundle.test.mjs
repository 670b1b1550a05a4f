// The committed bundles in labnb/static are what `npm run build` makes, and they load.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { FakeModel, fakeKernel, setupDom } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const staticDir = path.join(root, "labnb/static");
const FILES = ["cache_view.js", "run_view.js", "widget.css"];

test("a rebuild is byte-for-byte the committed bundle", () => {
  const out = mkdtempSync(path.join(tmpdir(), "labnb-build-"));
  try {
    execFileSync(process.execPath, [path.join(root, "js/build.mjs"), out], {
      cwd: tmpdir(), // the output must not depend on the working directory
      stdio: "pipe",
    });
    assert.deepEqual(readdirSync(out).sort(), FILES);
    for (const name of FILES) {
      assert.ok(
        readFileSync(path.join(out, name)).equals(readFileSync(path.join(staticDir, name))),
        `labnb/static/${name} is stale: run \`npm run build\``,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("the bundles render and clean up", async () => {
  setupDom();
  const views = {
    "run_view.js": { summary: {}, types: [], tasks: [], log_task: { id: "" } },
    "cache_view.js": { groups: [], columns: [], rows: [], total_rows: 0, query: {} },
  };
  for (const [file, state] of Object.entries(views)) {
    const { default: widget } = await import(path.join(staticDir, file));
    const el = document.createElement("div");
    const model = new FakeModel({ kernel_busy: false, heartbeat: 0, ...state });
    const cleanup = await widget.render({ model, el, experimental: fakeKernel().experimental });
    assert.ok(el.querySelector(".labnb"), file);
    assert.ok(el.querySelector('[role="status"]'), file);
    cleanup();
    assert.equal(model.listenerCount, 0, file);
  }
});
