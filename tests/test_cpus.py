"""The default worker count follows the CPUs a container really gives us."""

from __future__ import annotations

import os

from labnb.engine.cpus import available_cpus


def test_cgroup_quota_limits_the_count(tmp_path, monkeypatch):
    monkeypatch.delenv("CPU_LIMIT", raising=False)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert available_cpus(cpu_max) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cpu_max) == len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_jupyterhub_cpu_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("CPU_LIMIT", "0.5")
    assert available_cpus(tmp_path / "missing") == 1
    monkeypatch.setenv("CPU_LIMIT", "not a number")
    assert available_cpus(tmp_path / "missing") >= 1
