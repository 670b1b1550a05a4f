"""Declared needs on real worker processes: each task sees only the GPUs it was
given (simulated devices, ``Lab(gpus=N)``) and runs on its own cores; needs no
machine can meet are refused before anything runs."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from resource_tasks import NeedsNothing, OneCore, OneGpu, SizedByParameter

import labnb
from labnb.engine.machine import GPUS_VARIABLE, nvml_gpus, usable_gpus


def test_each_task_sees_only_its_own_gpu_and_no_gpu_runs_two_at_once(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=4, gpus=2)
    results = lab.run_tasks([OneGpu(n=i) for i in range(6)], disable_progress=True)
    seen = list(results.values())
    assert {view["cuda"] for view in seen} == {"0", "1"}
    assert all(view["hip"] == view["cuda"] and view["order"] == "PCI_BUS_ID" for view in seen)
    for gpu in ("0", "1"):
        spans = sorted((v["started"], v["finished"]) for v in seen if v["cuda"] == gpu)
        assert len(spans) == 3
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    # Two at a time although four workers were free: the GPUs were the limit.
    assert max(v["finished"] for v in seen) - min(v["started"] for v in seen) >= 3 * 0.3


def test_a_resources_method_sizes_each_task_by_its_parameters(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, gpus=[1, 3])
    results = lab.run_tasks(
        [SizedByParameter(gpus=2), SizedByParameter(gpus=0)], disable_progress=True
    )
    assert results[SizedByParameter(gpus=2)]["cuda"] == "1,3"
    # Declared, but no GPU: it sees none, rather than every GPU.
    assert results[SizedByParameter(gpus=0)]["cuda"] == ""


def test_tasks_that_declare_nothing_see_what_the_lab_sees(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    results = lab.run_tasks([NeedsNothing(n=1)], disable_progress=True)
    assert results[NeedsNothing(n=1)]["cuda"] == "0,1"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin one")
def test_declared_cpus_pin_the_task_to_its_own_cores_with_thread_pools_to_match(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    results = lab.run_tasks([OneCore(n=i) for i in range(4)], disable_progress=True)
    for view in results.values():
        assert len(view["cores"]) == 1 and view["omp"] == "1"
    again = lab.run_tasks([NeedsNothing(n=2)], disable_progress=True)
    assert len(again[NeedsNothing(n=2)]["cores"]) == len(os.sched_getaffinity(0))


def test_a_task_that_needs_a_gpu_is_refused_where_there_is_none(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", gpus=0)
    with pytest.raises(labnb.ResourcesError, match=r"OneGpu\(n=1.*needs 1 GPU.*none"):
        lab.run_tasks([NeedsNothing(n=1), OneGpu(n=1)], disable_progress=True)
    assert not lab.is_cached(NeedsNothing(n=1))  # refused before anything ran
    assert lab.runs() == []
    with pytest.raises(labnb.ResourcesError, match="needs 3 GPUs"):
        labnb.Lab(storage=tmp_path / "s", gpus=[0, 1]).submit([SizedByParameter(gpus=3)])


def test_more_cpus_than_the_machine_has_are_refused(tmp_path: Path):
    @labnb.task(resources={"cpus": 10_000})
    class Huge:
        def run(self) -> None:
            return None

    with pytest.raises(labnb.ResourcesError, match="10000 CPUs, and this machine has"):
        labnb.Lab(storage=tmp_path / "s").run_tasks([Huge()], disable_progress=True)


def test_a_bad_declaration_fails_at_the_decorator():
    with pytest.raises(labnb.ResourcesError, match="task type Typo: unknown resource 'gpu'"):

        @labnb.task(resources={"gpu": 1})
        class Typo:
            def run(self) -> None:
                return None


def test_the_environment_variable_and_the_lab_choose_the_gpus(monkeypatch):
    monkeypatch.setenv(GPUS_VARIABLE, "2,5")
    assert [gpu.index for gpu in usable_gpus()] == [2, 5]
    assert [gpu.index for gpu in usable_gpus([0])] == [0]  # the Lab's choice wins
    monkeypatch.setenv(GPUS_VARIABLE, "none")
    assert usable_gpus() == []
    monkeypatch.setenv(GPUS_VARIABLE, "the fast one")
    with pytest.raises(labnb.ResourcesError, match="LABNB_GPUS must be device numbers"):
        usable_gpus()
    with pytest.raises(labnb.ResourcesError, match="a device twice"):
        usable_gpus([1, 1])


def test_the_run_record_and_the_widget_show_which_gpu_each_task_holds(tmp_path: Path):
    from labnb.display.widgets import RunView

    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, gpus=[0, 1])
    run = lab.submit([OneGpu(n=i, seconds=0.1) for i in range(4)] + [NeedsNothing(n=9)])
    run.wait(60)
    view = RunView(run.state)  # fed from the run process's record, like any follower
    holds = {row["label"]: row["resources"] for row in view.tasks}
    assert sorted(holds.values(), key=str) == ["GPU 0", "GPU 0", "GPU 1", "GPU 1", None]
    assert holds["NeedsNothing(n=9)"] is None
    view.close()


def test_the_gpu_check_script_runs_anywhere_and_skips_cleanly_without_a_gpu():
    script = Path(__file__).parent.parent / "benchmarks" / "gpu_check.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    if not nvml_gpus():
        assert "skipped" in done.stdout
    else:
        assert "OK: each task saw only its GPU" in done.stdout or "skipped" in done.stdout


class _Nvml:
    """A stand-in for ``pynvml`` with two devices (no GPU here): checks how labnb
    reads NVML's answers (device memory; per-process GPU memory and the
    utilisation of the devices a process uses), not NVML itself."""

    class _Memory:
        total = 16 * 2**30

    class _Utilisation:
        def __init__(self, gpu: int) -> None:
            self.gpu = gpu

    class _Process:
        def __init__(self, pid: int, used: int | None) -> None:
            self.pid, self.usedGpuMemory = pid, used

    def nvmlInit(self) -> None:
        return None

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"Simulated GPU"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return self._Memory()

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return self._Utilisation([40, 90][handle])

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return [[self._Process(10, 2**30)], [self._Process(10, 2**29), self._Process(11, None)]][
            handle
        ]


def test_nvml_answers_become_gpus_and_per_task_gpu_use(monkeypatch):
    from labnb.engine import machine

    monkeypatch.setattr(machine, "_NVML", [_Nvml()])
    assert machine.nvml_gpus() == [
        machine.Gpu(0, 16 * 2**30, "Simulated GPU"),
        machine.Gpu(1, 16 * 2**30, "Simulated GPU"),
    ]
    # pid 10 uses both devices: the busier one's utilisation, the memory of both.
    assert machine.gpu_usage([10, 11, 12]) == {10: (90.0, 1536.0), 11: (90.0, None)}
