"""Type checkers understand ``@labnb.task`` classes with no plugin (``dataclass_transform``)."""

from __future__ import annotations

import textwrap

import pytest

GOOD = """
    from collections.abc import Sequence
    from typing import IO, Protocol

    import labnb


    class Scored(Protocol):
        def run(self) -> float: ...


    @labnb.task
    class Model:
        seed: int
        C: float = 1.0

        def run(self) -> float:
            return self.seed * self.C


    @labnb.task(max_parallel=2, code_version="v1")
    class Experiment:
        model: Scored
        name: str

        def run(self) -> str:
            return f"{self.name}: {self.model.run()}"


    experiment = Experiment(model=Model(seed=1), name="x")
    name: str = experiment.name
    seed: int = Model(seed=1, C=2.0).seed
    results: dict = labnb.Lab(storage=None).run_tasks([Model(seed=2)])


    class KeyValueStorage(labnb.storage.Storage):  # labtech's four methods, typed as its docs
        def find_keys(self) -> Sequence[str]:
            return []

        def exists(self, key: str) -> bool:
            return False

        def file_handle(self, key: str, filename: str, *, mode: str = "r") -> IO:
            return open(f"{key}-{filename}", mode)

        def delete(self, key: str) -> None:
            return None


    mine: labnb.storage.Storage = KeyValueStorage()
    labnb.Lab(storage=mine)
"""

BAD = """
    import labnb


    @labnb.task
    class Model:
        seed: int

        def run(self) -> int:
            return self.seed


    Model(seed="one")
    Model(sead=1)
    Model(seed=1).seed = 2
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory) -> dict[str, list[str]]:
    """mypy's errors for each snippet, from one run (mypy reads labnb and pandas once)."""
    api = pytest.importorskip("mypy.api")
    folder = tmp_path_factory.mktemp("typing")
    for name, source in (("good", GOOD), ("bad", BAD)):
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    out, err, _ = api.run(
        [str(folder / "good.py"), str(folder / "bad.py"), "--strict", "--allow-any-generics",
         "--cache-dir=/dev/null", "--no-error-summary"]
    )  # fmt: skip
    lines = (out + err).splitlines()
    return {name: [line for line in lines if f"{name}.py:" in line] for name in ("good", "bad")}


def test_correct_task_code_type_checks(mypy_output):
    assert mypy_output["good"] == []


def test_a_str_for_an_int_field_a_wrong_name_and_assignment_are_flagged(mypy_output):
    bad = "\n".join(mypy_output["bad"])
    assert 'bad.py:13: error: Argument "seed" to "Model" has incompatible type "str"' in bad
    assert 'bad.py:14: error: Unexpected keyword argument "sead"' in bad
    assert "bad.py:15: error:" in bad
    assert len(mypy_output["bad"]) == 3, bad
