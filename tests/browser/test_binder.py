"""Binder without Binder: the tutorial, run in what Binder would build from ``binder/``.

Binder (repo2docker) starts from a conda environment of its own, here Python
3.11 with JupyterLab 4.4.9 and ipykernel 7.0.1, then runs ``pip install -r
binder/requirements.txt`` from the repository root. This test does the same in
a fresh virtual environment, starts *that* environment's JupyterLab on
127.0.0.1 and has headless Chromium run every cell of
``examples/tutorial.ipynb``: no cell may fail and the widget's progress must
move while the cells run (ipykernel 7.0.x stalls it; ipywidgets issue 4001).

The environment is cached under pytest's cache dir, keyed by a hash of
``binder/*``, the install-related parts of ``pyproject.toml`` and the base
versions, so a rerun skips the install (labnb itself is installed editable, as
on Binder, so source changes need no rebuild). ``LABNB_BINDER_FRESH=1`` builds
it in a temp dir instead; ``LABNB_BINDER_PYTHON=/path/to/venv/bin/python`` uses
an existing environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jlab import Notebook, start_server
from requirements import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
REPO = HERE.parents[1]
BINDER = REPO / "binder"
SCREENSHOTS = HERE / "screenshots"
TUTORIAL = "examples/tutorial.ipynb"

# What Binder's base image has before binder/requirements.txt runs: repo2docker
# 2026.4.0's conda lock for Python 3.11 (buildpacks/conda/environment.py-3.11-
# linux-64.lock) pins these, among others. The widget packages are pinned too
# so that pip keeps them when they already satisfy labnb, as it would there.
BINDER_BASE = [
    "jupyterlab==4.4.9",
    "ipykernel==7.0.1",
    "ipywidgets==8.1.7",
    "jupyterlab_widgets==3.0.15",
]
REPORTED = ["jupyterlab", "ipykernel", "ipywidgets", "jupyterlab_widgets", "anywidget", "labnb"]
# Results a previous run left next to the notebooks; copying them would make
# the tutorial load everything from the cache and show no progress at all.
NOT_COPIED = shutil.ignore_patterns(
    "classification_lab_*",
    "*_storage",
    "labnb_storage",
    "mlflow.db",
    "mlruns",
    "*.executed.ipynb",
    ".ipynb_checkpoints",
)
RUN_TIMEOUT = 300  # seconds for Run All; about 60 s on 2 cores

# One sample of the page: the rendered cells' prompts and every "Overall
# progress" bar. JupyterLab 4.4 renders the notebook as a windowed list: cells
# out of view may have no prompt in the DOM (their outputs stay), so a bar is
# not located by its cell's position. Each bar element gets a serial number
# (data-test-bar) instead; a widget re-rendered at the end of a run is a new
# element, so "the same bar advanced" means the page itself was updated live.
SAMPLE = """() => {
  window.__labnbBars ??= 0;
  const prompts = Array.from(
    document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'),
    p => p.textContent.trim());
  const bars = Array.from(
    document.querySelectorAll('[role="progressbar"][aria-label="Overall progress"]'), b => {
      b.dataset.testBar ??= String(++window.__labnbBars);
      const cell = b.closest('.jp-Cell');
      return {bar: b.dataset.testBar, cell: cell?.getAttribute('data-windowed-list-index') ?? null,
              now: b.getAttribute('aria-valuenow'), max: b.getAttribute('aria-valuemax')};
    });
  const status = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status ?? null;
  return {prompts, bars, status};
}"""
SCROLL_TO_END = """() => {
  const outer = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  if (outer) outer.scrollTop = outer.scrollHeight;
}"""


# --------------------------------------------------------------------------- environment


def _runtime_python() -> str:
    """An interpreter of the version ``binder/runtime.txt`` pins (``python-3.11``)."""
    spec = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", spec)
    assert match, f"binder/runtime.txt should read like python-3.11, not {spec!r}"
    wanted = (int(match[1]), int(match[2]))
    if sys.version_info[:2] == wanted:
        return sys.executable  # `-m venv` from a venv builds on its base interpreter
    found = shutil.which(f"python{wanted[0]}.{wanted[1]}")
    if found is None:
        unavailable(f"binder/runtime.txt asks for Python {spec}, which is not installed")
    return found


def _install_config() -> bytes:
    """What of pyproject.toml decides what gets installed: [build-system],
    [project] and [tool.hatch] (not linter or pytest settings)."""
    raw = (REPO / "pyproject.toml").read_bytes()
    try:
        import tomllib
    except ImportError:  # Python 3.10: any change rebuilds
        return raw
    config = tomllib.loads(raw.decode())
    relevant = {
        "build-system": config.get("build-system"),
        "project": config.get("project"),
        "hatch": config.get("tool", {}).get("hatch"),
    }
    return json.dumps(relevant, sort_keys=True).encode()


def _env_key(base_python: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(BINDER.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(_install_config())
    version = subprocess.run(
        [base_python, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    digest.update(("\n".join(BINDER_BASE) + version).encode())
    return digest.hexdigest()[:16]


def _run_logged(cmd: list[str], log: Path, cwd: Path = REPO) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}  (in {cwd})\n")
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")


def _build(env_dir: Path, base_python: str) -> Path:
    """A fresh venv with Binder's base versions, then binder/requirements.txt."""
    log = env_dir.parent / f"{env_dir.name}.log"
    log.unlink(missing_ok=True)
    started = time.monotonic()
    _run_logged([base_python, "-m", "venv", str(env_dir)], log)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run_logged([*pip, "--upgrade", "pip"], log)  # Binder's conda env has a current pip
    # --no-compile halves the install time (no .pyc for all of mlflow, scipy,
    # JupyterLab...) and changes nothing that gets installed.
    _run_logged([*pip, "--no-compile", *BINDER_BASE], log)
    # What repo2docker runs, from the repository root (minus its --no-cache-dir:
    # a local wheel cache only makes this faster).
    _run_logged([*pip, "--no-compile", "-r", "binder/requirements.txt"], log, cwd=REPO)
    print(f"--- built {env_dir} in {time.monotonic() - started:.0f} s (log: {log})")
    return python


def _versions(python: Path | str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "import labnb\n"
        f"v = {{n: m.version(n) for n in {REPORTED!r}}}\n"
        "v['python'] = sys.version.split()[0]\n"
        "v['labnb_path'] = labnb.__file__\n"
        "print(json.dumps(v))\n"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, f"cannot read versions from {python}:\n{out.stderr}"
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def binder_python(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """The python of an environment built the way Binder builds this repository."""
    given = os.environ.get("LABNB_BINDER_PYTHON")
    if given:
        return Path(given)
    base_python = _runtime_python()
    cache = getattr(request.config, "cache", None)
    if cache is None or os.environ.get("LABNB_BINDER_FRESH") == "1":
        return _build(tmp_path_factory.mktemp("binder") / "venv", base_python)
    root = Path(cache.mkdir("labnb-binder-venv"))
    key = _env_key(base_python)
    env_dir = root / key
    done = root / f"{key}.complete"
    if done.exists() and (env_dir / "bin" / "python").exists():
        return env_dir / "bin" / "python"
    # Stale environments (other keys) and a half-built one go first.
    for old in root.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    python = _build(env_dir, base_python)
    done.write_text(json.dumps(_versions(python)))
    return python


# --------------------------------------------------------------------------- helpers


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


@pytest.fixture
def binder_server(binder_python: Path, tmp_path_factory) -> Iterator:
    server = start_server(
        tmp_path_factory.mktemp("binder-jupyter"), python=str(binder_python), timeout=120
    )
    try:
        yield server
    finally:
        server.stop()


def _kernel_command(server, nb_path: str) -> list[str]:
    """The command line of the kernel process serving ``nb_path``."""
    import psutil

    (session,) = server.sessions_for(nb_path)
    connection_file = f"kernel-{session['kernel']['id']}.json"
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(arg.endswith(connection_file) for arg in cmdline):
            return cmdline
    raise AssertionError(f"no process runs the kernel of {nb_path} ({connection_file})")


# Scroll the notebook until bar ``bar`` is in view. Cells far from the view are
# not rendered (JupyterLab's windowed notebook), so scrollIntoView cannot reach
# them: step through the scroll range instead, from the top down.
SCROLL_TO_BAR = """async bar => {
  const outer = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  const inView = () => {
    const b = document.querySelector(`[data-test-bar="${bar}"]`);
    if (!b || !b.isConnected) return false;
    const r = b.getBoundingClientRect(), o = outer.getBoundingClientRect();
    return r.height > 0 && r.top >= o.top && r.bottom <= o.bottom;
  };
  const step = outer.clientHeight * 0.5;
  for (let top = 0; top <= outer.scrollHeight; top += step) {
    outer.scrollTop = top;
    await new Promise(resolve => setTimeout(resolve, 60));
    if (inView()) {
      document.querySelector(`[data-test-bar="${bar}"]`).scrollIntoView({block: 'center'});
      return true;
    }
  }
  return false;
}"""


def _screenshot_bar(nb: Notebook, bar: str, name: str) -> None:
    """Scroll bar ``bar`` into view, take a screenshot, then scroll back to the
    end of the notebook, where Run All keeps the queued cells in view. Best
    effort: the picture is for people."""
    try:
        if not nb.page.evaluate(SCROLL_TO_BAR, bar):
            print(f"--- screenshot {name}: bar {bar} could not be scrolled into view")
        nb.screenshot(name)
    except Exception as e:
        print(f"--- screenshot {name} failed: {e}")
    finally:
        nb.page.evaluate(SCROLL_TO_END)
        nb.page.wait_for_timeout(300)


def _watch_run(nb: Notebook, timeout: float) -> tuple[list[dict], list[str]]:
    """Sample the page every 0.2 s until Run All is over.

    Returns the samples and, for each time a bar was seen advancing on the page
    (to a value short of its maximum) while the kernel was running cells, a
    description such as "bar 3 (cell 6): 2 -> 7 of 10"."""
    samples: list[dict] = []
    last: dict[str, int] = {}
    live: list[str] = []
    started = time.monotonic()
    deadline = started + timeout
    seen_running = False
    shot = False
    quiet = 0  # consecutive samples with the kernel idle and nothing queued
    while True:
        try:
            state = nb.page.evaluate(SAMPLE)
        except Exception:  # the page re-rendering under us: sample again
            time.sleep(0.1)
            continue
        state["t"] = round(time.monotonic() - started, 2)
        samples.append(state)
        queued = any(p.startswith("[*]") for p in state["prompts"])
        busy = queued or state["status"] != "idle"
        seen_running = seen_running or busy
        for bar in state["bars"]:
            if bar["now"] is None:
                continue
            now = int(bar["now"])
            before, total = last.get(bar["bar"]), bar["max"]
            # Advanced, and not yet full: a bar stuck at 0 that jumps to the
            # end when its cell finishes (stalled updates) does not count.
            if busy and before is not None and before < now < int(total or 0):
                live.append(f"bar {bar['bar']} (cell {bar['cell']}): {before} -> {now} of {total}")
                # One picture mid-run, of a run long enough to still be going.
                if not shot and int(total) >= 40 and now < int(total) / 2:
                    _screenshot_bar(nb, bar["bar"], "live-progress")
                    shot = True
            last[bar["bar"]] = now
        # Run All queues every cell at once and the last cell stays in view
        # with "[*]:" until its turn, so "idle with nothing queued" for a
        # moment (the kernel idles briefly between cells) means it is over.
        quiet = quiet + 1 if seen_running and not busy else 0
        if quiet >= 3:
            return samples, live
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the tutorial was still running after {timeout} s\n{nb.describe()}"
            )
        time.sleep(0.2)


# --------------------------------------------------------------------------- the test


def test_tutorial_in_binder_environment(binder_python, binder_server, browser):
    versions = _versions(binder_python)
    print(f"--- Binder stand-in: {binder_python}\n{json.dumps(versions, indent=1)}")
    assert _version_tuple(versions["ipykernel"]) >= (7, 1), (
        f"binder/requirements.txt left ipykernel at {versions['ipykernel']}: "
        "7.0.x stalls the widget's live updates"
    )
    assert Path(versions["labnb_path"]).is_relative_to(REPO), "labnb is not this checkout"

    shutil.copytree(REPO / "examples", binder_server.root_dir / "examples", ignore=NOT_COPIED)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    nb = Notebook(binder_server, context, TUTORIAL, SCREENSHOTS, "binder-tutorial")
    try:
        started = time.monotonic()
        nb.open(timeout=120)
        opened = time.monotonic() - started
        # The notebook's python3 kernel runs in this environment, not the test runner's.
        kernel = _kernel_command(binder_server, TUTORIAL)
        assert kernel[0] == str(binder_python), f"the kernel runs {kernel}"
        nb.screenshot("opened")

        nb.run_all(wait=False)
        samples, live = _watch_run(nb, RUN_TIMEOUT)
        print("--- live progress seen:\n" + "\n".join(live))
        ran = time.monotonic() - started - opened
        print(f"--- opened in {opened:.1f} s, Run All took {ran:.1f} s ({len(samples)} samples)")
        nb.screenshot("finished")
        # Not failures by themselves, but the first place to look when one comes.
        problems = [m for m in nb.console if m.startswith(("error", "warning", "pageerror"))]
        print("--- browser console errors and warnings:\n" + "\n".join(problems[-30:]))
        logged = [
            line
            for line in binder_server.log_tail(200_000).splitlines()
            if re.search(r"Traceback|Error|\[W |WARN|[Ww]arning", line)
        ]
        print("--- JupyterLab/kernel log warnings and errors:\n" + "\n".join(logged[-30:]))

        # Every code cell ran, and none has an error output (read from the
        # saved notebook, where an error is an "error" output, not just red text).
        nb.save()
        saved = json.loads(nb.path.read_text())
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        not_run = [i for i, c in enumerate(code) if c.get("execution_count") is None]
        assert not not_run, f"code cells {not_run} did not run\n{nb.describe()}"
        errors = [
            f"code cell {i}: {o.get('ename')}: {o.get('evalue')}"
            for i, c in enumerate(code)
            for o in c["outputs"]
            if o["output_type"] == "error"
        ]
        assert not errors, "\n".join(errors) + f"\n{nb.describe()}"
        stderr = [
            (i, "".join(o["text"]))
            for i, c in enumerate(code)
            for o in c["outputs"]
            if o["output_type"] == "stream" and o["name"] == "stderr"
        ]
        for i, text in stderr:
            print(f"--- stderr of code cell {i}:\n{text[-2000:]}")
        tracebacks = [
            f"code cell {i}:\n{text[-3000:]}" for i, text in stderr if "Traceback" in text
        ]
        assert not tracebacks, "a traceback on stderr\n" + "\n".join(tracebacks)

        # The widget showed every run (one per run_task(s) call) and its
        # progress moved while the cells ran, ending full.
        runs = sum("lab.run_task" in "".join(c["source"]) for c in code)
        final = samples[-1]["bars"]
        assert len(final) >= runs, f"{len(final)} progress widgets for {runs} runs\n{final}"
        unfinished = [b for b in final if b["max"] is None or b["now"] != b["max"]]
        assert not unfinished, f"bars not full at the end: {unfinished}"
        assert live, (
            "no 'Overall progress' bar advanced on the page while cells were running "
            f"(stalled widget updates?); samples: {samples[::10]}"
        )
    except BaseException:
        try:
            print(f"--- screenshot: {nb.screenshot('failure')}")
        except Exception as e:
            print(f"--- screenshot failed: {e}")
        print(f"--- JupyterLab log (tail)\n{binder_server.log_tail()}")
        if nb.console:
            print("--- browser console\n" + "\n".join(nb.console[-50:]))
        raise
    finally:
        try:
            nb.close()
        finally:
            context.close()
