"""Task identity: ids are stable, and equality, hashing and ids always agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from frozendict import frozendict
from sample_tasks import Colour, Square, Total, WithEnum

import labnb

GOLDEN = Path(__file__).with_name("golden_ids.json")


def golden_samples() -> dict[str, object]:
    """Tasks whose ids must never change between releases."""
    return {
        "square_3": Square(x=3),
        "total_nested": Total(parts=[Square(x=1), Square(x=2)]),
        "enum_and_dict": WithEnum(colour=Colour.RED, options={"b": 1.5, "a": [True, None, "s"]}),
    }


def test_ids_match_the_golden_file():
    expected = json.loads(GOLDEN.read_text())
    assert {name: labnb.task_id(task) for name, task in golden_samples().items()} == expected


def test_ids_are_the_same_in_another_process_with_another_hash_seed():
    code = (
        "import json, labnb, test_identity;"
        "print(json.dumps({n: [labnb.task_id(t), hash(t)] "
        "for n, t in test_identity.golden_samples().items()}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).parent)}
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    here = {name: [labnb.task_id(t), hash(t)] for name, t in golden_samples().items()}
    assert json.loads(output) == here


def test_equality_hash_and_id_agree():
    a, b = Square(x=2), Square(x=2)
    assert a == b and hash(a) == hash(b) and labnb.task_id(a) == labnb.task_id(b)
    assert a != Square(x=3)
    assert len({a, b, Square(x=3)}) == 2


def test_dict_key_order_does_not_matter():
    first = WithEnum(colour=Colour.RED, options={"a": 1, "b": 2})
    second = WithEnum(colour=Colour.RED, options={"b": 2, "a": 1})
    assert first == second and labnb.task_id(first) == labnb.task_id(second)


@pytest.mark.parametrize(("left", "right"), [(1, 1.0), (1, True), (1.0, True), (0, False)])
def test_numbers_and_booleans_are_different_values(left, right):
    first = WithEnum(colour=Colour.RED, options={"v": left})
    second = WithEnum(colour=Colour.RED, options={"v": right})
    assert first != second
    assert labnb.task_id(first) != labnb.task_id(second)


def test_lists_become_tuples_and_dicts_frozendicts():
    task = WithEnum(colour=Colour.BLUE, options={"values": [1, [2, 3]], "inner": {"k": "v"}})
    assert task.options == frozendict({"values": (1, (2, 3)), "inner": frozendict({"k": "v"})})
    assert isinstance(task.options["inner"], frozendict)
    assert task == WithEnum(
        colour=Colour.BLUE, options={"values": (1, (2, 3)), "inner": {"k": "v"}}
    )


def test_nested_tasks_are_identified_by_their_ids():
    assert Total(parts=[Square(x=1)]) == Total(parts=(Square(x=1),))
    assert Total(parts=[Square(x=1)]) != Total(parts=[Square(x=2)])


def test_tasks_are_frozen():
    task = Square(x=1)
    with pytest.raises(AttributeError):
        task.x = 2


def test_code_version_and_qualname_are_part_of_the_id():
    @labnb.task(code_version="v1")
    class Versioned:
        x: int

        def run(self):
            return self.x

    first = Versioned(x=1)

    @labnb.task(code_version="v2")
    class Versioned:
        x: int

        def run(self):
            return self.x

    assert first != Versioned(x=1)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(object(), "builtins.object"), ({1, 2}, "builtins.set"), ([1, b"x"], "builtins.bytes")],
)
def test_bad_parameters_name_the_class_field_and_type(value, type_name):
    with pytest.raises(TypeError) as error:
        Total(parts=value)
    assert "Total.parts" in str(error.value)
    assert type_name in str(error.value)


def test_dict_keys_must_be_strings():
    with pytest.raises(TypeError, match=r"WithEnum\.options.*keys must be str"):
        WithEnum(colour=Colour.RED, options={1: "x"})


def test_reserved_field_names_and_missing_run_are_refused():
    with pytest.raises(TypeError, match="'result'"):

        @labnb.task
        class HasResult:
            result: int

            def run(self):
                return 1

    with pytest.raises(TypeError, match="run"):

        @labnb.task
        class NoRun:
            x: int


def test_result_before_running_is_a_clear_error():
    with pytest.raises(AttributeError, match="has no result yet"):
        Square(x=1).result  # noqa: B018


def test_user_post_init_still_runs():
    @labnb.task
    class Checked:
        x: int

        def __post_init__(self):
            if self.x < 0:
                raise ValueError("x must be >= 0")

        def run(self):
            return self.x

    assert Checked(x=1).x == 1
    with pytest.raises(ValueError, match="x must be"):
        Checked(x=-1)
