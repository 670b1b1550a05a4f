"""A run outlives the Jupyter kernel that submitted it: restarted mid-run through
jupyter_client (SIGKILL, as the restart button with a stuck kernel does), the run
finishes in its run process and the new kernel re-attaches with ``lab.runs()[-1]``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.timeout(300)

SUBMIT = """
import os, time
import labnb

@labnb.task
class Slow:  # defined in the notebook: it reaches the run process by value
    n: int

    def run(self):
        with open(os.path.join({tally!r}, f"{{self.n}}.txt"), "a") as file:
            file.write(f"{{os.getpid()}}\\n")
        time.sleep(0.5)
        return self.n * 10

lab = labnb.Lab(storage={storage!r}, max_workers=2)
run = lab.submit([Slow(n=n) for n in range(8)])
print(run.id)
"""
REATTACH = """
import json, labnb
lab = labnb.Lab(storage={storage!r})
run = lab.runs()[-1]
finished = run.wait(timeout=120)
print(json.dumps([run.id, run.status, finished, sorted(run.results.values())]))
"""


@pytest.fixture
def kernel(tmp_path: Path, kernel_spec_manager: KernelSpecManager):
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=kernel_spec_manager)
    manager.start_kernel(cwd=str(tmp_path))
    try:
        yield manager
    finally:
        manager.shutdown_kernel(now=True)


def execute(manager: KernelManager, code: str) -> str:
    """Run ``code`` in the kernel; what it printed (an error fails the test)."""
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        printed: list[str] = []

        def collect(message: dict) -> None:
            content = message["content"]
            if message["msg_type"] == "stream" and content["name"] == "stdout":
                printed.append(content["text"])

        reply = client.execute_interactive(code, timeout=150, output_hook=collect)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(printed)
    finally:
        client.stop_channels()


def test_a_run_survives_a_kernel_restart_and_the_new_kernel_reattaches(kernel, tmp_path: Path):
    tally, storage = tmp_path / "tally", tmp_path / "storage"
    tally.mkdir()
    run_id = execute(kernel, SUBMIT.format(tally=str(tally), storage=str(storage))).strip()
    deadline = time.time() + 60
    while not list(tally.glob("*.txt")):
        assert time.time() < deadline, "the run never started a task"
        time.sleep(0.05)
    kernel.restart_kernel(now=True)  # kills the kernel mid-run
    assert len(list(tally.glob("*.txt"))) < 8, "the run ended before the restart"
    found_id, status, finished, results = json.loads(
        execute(kernel, REATTACH.format(storage=str(storage))).strip().splitlines()[-1]
    )
    assert (found_id, status, finished) == (run_id, "done", True)
    assert results == [n * 10 for n in range(8)]
    counts = {path.stem: len(path.read_text().splitlines()) for path in tally.glob("*.txt")}
    assert counts == {str(n): 1 for n in range(8)}  # every task ran exactly once
