"""The scheduler packing tasks onto a machine's cores, GPUs and memory (pure, no processes)."""

from __future__ import annotations

import random

import pytest

from labnb.engine.machine import Gpu, Machine
from labnb.engine.packing import Pool
from labnb.engine.scheduler import Node, Scheduler
from labnb.model.resources import Resources, ResourcesError, parse_resources

GiB = 2**30


def machine(cpus: int = 8, gpus: int = 2, gpu_memory: int | None = 16 * GiB) -> Machine:
    return Machine(
        cores=tuple(range(cpus)),
        cpus=cpus,
        gpus=tuple(Gpu(index, gpu_memory) for index in range(gpus)),
        memory=64 * GiB,
    )


def needs(**declared: object) -> Resources:
    return parse_resources(declared, "test")


def scheduler_for(nodes: list[Node], workers: int = 8, **shape: object) -> Scheduler:
    return Scheduler(nodes, pool=Pool.of(machine(**shape), workers))  # type: ignore[arg-type]


def drain(scheduler: Scheduler) -> list[str]:
    taken = []
    while (key := scheduler.take()) is not None:
        taken.append(key)
    return taken


def test_tasks_that_need_a_gpu_each_run_one_per_gpu_and_get_different_gpus():
    scheduler = scheduler_for([Node(f"t{i}", needs=needs(gpus=1)) for i in range(5)])
    assert drain(scheduler) == ["t0", "t1"]
    assert {scheduler.grants["t0"].gpus, scheduler.grants["t1"].gpus} == {(0,), (1,)}
    scheduler.finish("t0")
    assert drain(scheduler) == ["t2"]
    assert scheduler.grants["t2"].gpus == (0,)


def test_gpu_memory_lets_tasks_share_a_gpu_while_their_memory_fits():
    scheduler = scheduler_for(
        [Node(f"t{i}", needs=needs(gpus=1, gpu_memory="6G")) for i in range(6)], gpus=1
    )
    assert drain(scheduler) == ["t0", "t1"]  # 2 x 6 GiB in 16 GiB; a third does not fit
    assert all(grant.gpus == (0,) for grant in scheduler.grants.values())


def test_sharing_fills_one_gpu_before_the_next_so_a_whole_gpu_stays_free():
    small = [Node(f"s{i}", needs=needs(gpus=1, gpu_memory="4G")) for i in range(3)]
    scheduler = scheduler_for([*small, Node("big", needs=needs(gpus=1))])
    assert drain(scheduler) == ["s0", "s1", "s2", "big"]
    assert {scheduler.grants[f"s{i}"].gpus for i in range(3)} == {(0,)}
    assert scheduler.grants["big"].gpus == (1,)


def test_a_gpu_of_unknown_memory_is_taken_whole_by_a_task_that_states_memory():
    nodes = [Node(f"t{i}", needs=needs(gpus=1, gpu_memory="1G")) for i in range(3)]
    scheduler = scheduler_for(nodes, gpus=2, gpu_memory=None)
    assert drain(scheduler) == ["t0", "t1"]


def test_declared_cpus_pin_disjoint_cores_and_count_against_the_machine():
    nodes = [Node(f"t{i}", needs=needs(cpus=3)) for i in range(3)]
    scheduler = scheduler_for(nodes, cpus=8)
    assert drain(scheduler) == ["t0", "t1"]  # 3 + 3 of 8; a third needs 3 of the 2 left
    cores = [set(scheduler.grants[key].cores) for key in ("t0", "t1")]
    assert len(cores[0]) == len(cores[1]) == 3 and not cores[0] & cores[1]


def test_tasks_that_declare_nothing_run_as_many_at_once_as_there_are_workers():
    nodes = [Node(f"t{i}") for i in range(20)]
    # More workers than cores (a user's choice today): still that many at once.
    assert len(drain(scheduler_for(nodes, workers=12, cpus=4))) == 12
    assert all(not grant.cores and not grant.gpus for grant in scheduler_for(nodes).grants.values())


def test_memory_is_packed_too():
    nodes = [Node(f"t{i}", needs=needs(memory="30G")) for i in range(3)]
    assert drain(scheduler_for(nodes)) == ["t0", "t1"]  # 64 GiB


def test_a_large_task_is_not_starved_by_a_stream_of_small_ones():
    """Four CPUs; small tasks need one; the big one needs all four. Small tasks
    that arrive after the big one must wait behind it, not keep its CPUs busy."""
    first = [Node(f"s{i}", needs=needs(cpus=1)) for i in range(3)]
    later = [Node(f"late{i}", needs=needs(cpus=1)) for i in range(10)]
    scheduler = scheduler_for([*first, Node("big", needs=needs(cpus=4)), *later], cpus=4)
    assert drain(scheduler) == ["s0", "s1", "s2"]
    for key in ("s0", "s1"):
        scheduler.finish(key)
        assert drain(scheduler) == []  # big is waiting for CPUs: nobody takes them
    scheduler.finish("s2")
    assert drain(scheduler) == ["big"]
    scheduler.finish("big")
    assert drain(scheduler) == ["late0", "late1", "late2", "late3"]


def test_tasks_that_need_none_of_what_a_waiting_task_needs_still_pass_it():
    scheduler = scheduler_for(
        [Node("g0", needs=needs(gpus=2)), Node("g1", needs=needs(gpus=2)), Node("cpu")],
    )
    assert drain(scheduler) == ["g0", "cpu"]  # g1 waits for GPUs; a CPU task passes it


def test_max_parallel_and_max_workers_hold_together_with_resources():
    limited = [Node(f"l{i}", group="L", limit=1, needs=needs(gpus=1)) for i in range(3)]
    free = [Node(f"f{i}", group="F") for i in range(10)]
    scheduler = scheduler_for([*limited, *free], workers=4, cpus=2)
    taken = drain(scheduler)
    # One L (its max_parallel) although two GPUs are free; 4 CPU units (max_workers).
    assert taken == ["l0", "f0", "f1", "f2"]


def test_random_mixed_needs_never_exceed_the_machine_and_all_finish():
    rng = random.Random(7)
    nodes = [
        Node(
            f"t{i}",
            needs=needs(
                **rng.choice(
                    [{}, {"cpus": rng.randint(1, 4)}, {"gpus": 1}, {"gpus": 2}, {"memory": "20G"}]
                )
            ),
        )
        for i in range(200)
    ]
    pool = Pool.of(machine(cpus=4), 6)
    scheduler = Scheduler(nodes, pool=pool)
    finished = 0
    while finished < len(nodes):
        drain(scheduler)
        held = list(scheduler.grants.values())
        assert sum(grant.units for grant in held) <= 6
        assert sum(len(grant.cores) for grant in held) <= 4
        gpus = [gpu for grant in held for gpu in grant.gpus]
        assert len(gpus) == len(set(gpus)) <= 2
        assert sum(grant.memory for grant in held) <= 64 * GiB
        assert scheduler.running, "nothing runs although tasks are left: a deadlock"
        scheduler.finish(rng.choice(sorted(scheduler.running)))
        finished += 1
    assert scheduler.over and len(scheduler.done) == 200


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"gpu": 1}, "unknown resource 'gpu'"),
        ({"cpus": -1}, "cpus must be a whole number of at least 1"),
        ({"cpus": 0}, "cpus must be a whole number of at least 1"),
        ({"gpus": 1.5}, "gpus must be a whole number"),
        ({"memory": "lots"}, "'lots' is not a size"),
        ({"memory": 0}, "memory must be more than 0"),
        ({"gpu_memory": "4G"}, "no gpus are asked for"),
        ([("cpus", 1)], "must be a dict"),
    ],
)
def test_malformed_declarations_are_refused(declared: object, message: str):
    with pytest.raises(ResourcesError, match=message):
        parse_resources(declared, "Train")  # type: ignore[arg-type]


def test_needs_beyond_the_machine_are_refused_with_what_it_has():
    small = machine(cpus=2, gpus=1)
    assert small.refusal(needs(cpus=2, gpus=1)) is None
    assert "3 CPUs, and this machine has 2" in str(small.refusal(needs(cpus=3)))
    assert "2 GPUs" in str(small.refusal(needs(gpus=2)))
    assert "the largest has 16 GiB" in str(small.refusal(needs(gpus=1, gpu_memory="40G")))
    assert "of memory" in str(small.refusal(needs(memory="1T")))
    none = machine(gpus=0)
    with pytest.raises(ResourcesError, match=r"can never run here.*GPUs labnb may use are none"):
        none.check("Train(n=1)", needs(gpus=1))


def test_a_task_another_run_computes_gives_back_its_share_until_it_is_taken_over():
    scheduler = scheduler_for([Node(f"t{i}", needs=needs(gpus=1)) for i in range(3)], gpus=1)
    assert drain(scheduler) == ["t0"]
    scheduler.set_aside("t0")  # another run holds t0: its GPU is free for t1
    assert drain(scheduler) == ["t1"]
    assert not scheduler.regrant("t0")  # taken over while t1 holds the GPU: it waits
    scheduler.finish("t1")
    assert scheduler.regrant("t0") and scheduler.grants["t0"].gpus == (0,)
    assert drain(scheduler) == []
