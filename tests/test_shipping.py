"""Jobs sent to worker processes carry each task class once per worker."""

from __future__ import annotations

import pickle

from sample_tasks import Colour, Square, Total, WithEnum

from labnb.engine.job import Job
from labnb.runners.shipping import JobReceiver, JobSender


def roundtrip(sender: JobSender, receiver: JobReceiver, job: Job) -> tuple[Job, int]:
    task_id, types_bytes, job_bytes = pickle.loads(sender.dumps(job))
    assert task_id == job.task_id
    return receiver.loads(types_bytes, job_bytes), len(types_bytes)


def test_classes_are_sent_once_and_values_survive():
    sender, receiver = JobSender(), JobReceiver()
    first = Total(parts=[Square(x=1), Square(x=2)])
    received, types_size = roundtrip(sender, receiver, Job("a", first, {}, True))
    assert received.task == first and types_size > 0
    received, types_size = roundtrip(sender, receiver, Job("b", Square(x=3), {}, False))
    assert received.task == Square(x=3) and types_size == 0
    assert received.cache is False and received.dependencies == {}


def test_none_enum_and_dict_parameters_are_not_mistaken_for_classes():
    sender, receiver = JobSender(), JobReceiver()
    task = WithEnum(colour=Colour.RED, options={"none": None, "list": [None, 1.0, True]})
    received, _ = roundtrip(sender, receiver, Job("c", task, {}, True))
    assert received.task == task
    assert received.task.options["none"] is None
