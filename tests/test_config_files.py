"""Config files: ``labnb.sweep(TaskType, "params.yaml")`` and ``%%labtask --config``."""

from __future__ import annotations

import pickle
import sqlite3
import textwrap
from pathlib import Path

import pytest
from config_tasks import Dataset, Fit, Kernel
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import labnb
from labnb.magics.ipython import _MAGICS

PARAMS_YAML = """\
# The sweep of the experiment: lists are swept, the rest is fixed.
data:
  n: [3, 4]        # two datasets
  noise: 0.5
C: [0.1, 1e-3]     # 1e-3 is a float, as in Python
kernel: LINEAR
layers: [64, 32]   # one value: the field is a tuple
seed: {sweep: [1, 2]}
"""
PARAMS_TOML = """\
C = [0.1, 1e-3]
kernel = "LINEAR"
layers = [64, 32]
seed = {sweep = [1, 2]}

[data]
n = [3, 4]
noise = 0.5
"""
IN_CODE = [
    Fit(data=Dataset(n=n, noise=0.5), C=C, kernel=Kernel.LINEAR, layers=(64, 32), seed=seed)
    for n in (3, 4)
    for C in (0.1, 1e-3)
    for seed in (1, 2)
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def ids(tasks):
    return [labnb.task_id(task) for task in tasks]


def test_a_yaml_sweep_is_the_same_sweep_written_in_code_in_the_same_order(tmp_path):
    tasks = labnb.sweep(Fit, write(tmp_path, "params.yaml", PARAMS_YAML))
    assert ids(tasks) == ids(IN_CODE)
    assert tasks[0].data == Dataset(n=3, noise=0.5) and tasks[0].layers == (64, 32)


def test_a_toml_file_and_a_dict_make_the_same_tasks_as_the_yaml_file(tmp_path):
    from_toml = labnb.sweep(Fit, write(tmp_path, "params.toml", PARAMS_TOML))
    assert sorted(ids(from_toml)) == sorted(ids(IN_CODE))  # TOML puts tables last
    as_dict = {"data": {"n": [3, 4], "noise": 0.5}, "C": [0.1, 0.001], "kernel": "LINEAR",
               "layers": [64, 32], "seed": {"sweep": [1, 2]}}  # fmt: skip
    assert ids(labnb.sweep(Fit, as_dict)) == ids(IN_CODE)


def test_a_list_of_mappings_for_a_task_field_sweeps_over_every_task_they_make(tmp_path):
    path = write(tmp_path, "p.yml", "data:\n  - {n: [1, 2]}\n  - {n: 5, noise: 1.0}\nC: 1.0\n")
    tasks = labnb.sweep(Fit, str(path))
    assert [task.data for task in tasks] == [
        Dataset(n=1), Dataset(n=2), Dataset(n=5, noise=1.0)
    ]  # fmt: skip


def test_a_tuple_field_sweeps_with_the_explicit_sweep_form_and_values_are_kept_as_written(
    tmp_path,
):
    path = write(tmp_path, "p.yaml", "data: {n: 1}\nC: 1\nlayers: {sweep: [[8], [16, 16]]}\n")
    tasks = labnb.sweep(Fit, path)
    assert [task.layers for task in tasks] == [(8,), (16, 16)]
    assert tasks[0] == Fit(data=Dataset(n=1), C=1, layers=(8,))  # 1, not 1.0: as written
    assert tasks[0] != Fit(data=Dataset(n=1), C=1.0, layers=(8,))


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        (
            "unknown.yaml",
            "data: {n: 1}\nC: 1\nlearning_rate: 0.1\n",
            3,
            "learning_rate: unknown key: Fit's fields are data, C, kernel, layers, seed",
        ),
        (
            "nested.yaml",
            "data:\n  n: 1\n  size: 3\nC: 1\n",
            3,
            "data.size: unknown key: Dataset's fields are n, noise",
        ),
        ("type.yaml", "data: {n: 1}\nC: [0.1, ten]\n", 2, "C[1]: expected float, got str 'ten'"),
        ("bool.yaml", "data: {n: true}\nC: 1\n", 1, "data.n: expected int, got bool True"),
        (
            "layers.yaml",
            "data: {n: 1}\nC: 1\nlayers:\n  - 8\n  - wide\n",
            5,
            "layers[1]: expected int, got str 'wide'",
        ),
        (
            "enum.yaml",
            "data: {n: 1}\nC: 1\nkernel: POLY\n",
            3,
            "kernel: expected one of Kernel's names (RBF, LINEAR), got 'POLY'",
        ),
        ("literal.yaml", "data: {n: 1}\nC: 1\nsolver: adam\n", 3, "solver: expected Literal"),
        ("task.yaml", "data: 5\nC: 1\n", 1, "data: expected a mapping of Dataset's fields"),
        ("date.yaml", "data: {n: 1}\nC: 1\ntag: 2024-01-02\n", 3, "tag: expected str | None"),
        ("missing.yaml", "# no C\ndata: {n: 1}\n", 2, "C: missing: Fit has no default for C"),
        (
            "inner.yaml",
            "data:\n  noise: 1.0\nC: 1\n",
            1,
            "data.n: missing: Dataset has no default for n",
        ),
        ("twice.yaml", "data: {n: 1}\nC: 1\nC: 2\n", 3, "C: key given twice"),
        ("empty.yaml", "data: {n: 1}\nC: []\n", 2, "C: an empty list sweeps over nothing"),
        (
            "refused.yaml",
            "data: {n: 1}\nC: [1, -1]\n",
            1,
            "Fit refused {'data': Dataset(n=1, noise=0.0), 'C': -1}: "
            "ValueError: C must be positive",
        ),
        (
            "syntax.yaml",
            "data:\n  n: [1, 2\nC: 1\n",
            3,
            "not valid YAML: while parsing a flow sequence (from line 2)",
        ),
        ("tabs.yaml", "data:\n\tn: 1\n", 2, "not valid YAML"),
        ("top.yaml", "- 1\n- 2\n", 1, "expected a mapping of Fit's fields"),
        (
            "unknown.toml",
            "C = 1\n\n[data]\nn = 1\nsize = 3\n",
            5,
            "data.size: unknown key: Dataset's fields are n, noise",
        ),
        ("type.toml", 'C = 1\ndata = {n = "one"}\n', 2, "data.n: expected int, got str 'one'"),
        ("syntax.toml", "C = 1\ndata = {n = }\n", 2, "not valid TOML: Invalid value"),
        (
            "tables.toml",
            "C = 1.0\n[[data]]\nn = 1\n[[data]]\nn = 'x'\n",
            5,
            "data[1].n: expected int, got str 'x'",
        ),
        ("list.toml", "C = [1, 'x']\n[data]\nn = 1\n", 1, "C[1]: expected float, got str 'x'"),
        ("date.toml", "C = 1\ntag = 2024-01-02\n[data]\nn = 1\n", 2, "tag: expected str | None"),
    ],
)
def test_a_bad_config_file_is_one_error_naming_the_file_the_key_and_the_line(
    tmp_path, name, text, line, message
):
    path = write(tmp_path, name, text)
    with pytest.raises(labnb.ConfigError) as raised:
        labnb.sweep(Fit, path)
    error = raised.value
    assert error.line == line and error.file == str(path)
    assert str(error).startswith(f"{path}, line {line}: {message}")
    assert isinstance(error, labnb.LabnbError) and isinstance(error, ValueError)


def test_construction_s_own_check_refuses_values_no_parameter_may_hold(tmp_path):
    @labnb.task
    class Untyped:
        when: object

        def run(self) -> None:
            return None

    with pytest.raises(labnb.ConfigError, match=r"line 1: when: parameter values must be str"):
        labnb.sweep(Untyped, write(tmp_path, "p.yaml", "when: 2024-01-02\n"))


def test_a_dict_config_holds_only_what_a_file_could(tmp_path):
    with pytest.raises(labnb.ConfigError, match=r"<dict>: kernel: a config dict holds what"):
        labnb.sweep(Fit, {"data": {"n": 1}, "C": 1, "kernel": Kernel.RBF})


def test_a_file_that_is_not_yaml_or_toml_or_is_missing_is_refused(tmp_path):
    with pytest.raises(labnb.ConfigError, match=r"ends in .yaml, .yml or .toml"):
        labnb.sweep(Fit, write(tmp_path, "params.json", "{}"))
    with pytest.raises(labnb.ConfigError, match=r"gone.yaml: cannot be read"):
        labnb.sweep(Fit, tmp_path / "gone.yaml")
    with pytest.raises(TypeError, match=r"@labnb.task class"):
        labnb.sweep(dict, {"C": 1})


def test_a_config_error_pickles_with_its_key_and_line():
    error = labnb.ConfigError("p.yaml", "model.C", 4, "expected float")
    again = pickle.loads(pickle.dumps(error))
    assert (again.file, again.key, again.line, str(again)) == (
        "p.yaml", "model.C", 4, "p.yaml, line 4: model.C: expected float"
    )  # fmt: skip


def test_tasks_from_a_file_carry_it_across_pickling_without_changing_their_ids(tmp_path):
    path = write(tmp_path, "params.yaml", PARAMS_YAML)
    task = labnb.sweep(Fit, path)[0]
    again = pickle.loads(pickle.dumps(task))
    assert labnb.task_id(again) == labnb.task_id(IN_CODE[0])
    from labnb.model.tasks import config_origin

    origin = config_origin(again)
    assert origin is not None and origin.text == PARAMS_YAML and origin.name == str(path)
    assert config_origin(again.data) == origin
    assert config_origin(IN_CODE[0]) is None


def test_a_run_keeps_the_file_once_with_its_record_and_every_entry_and_sweeps_it_again(
    tmp_path,
):
    lab = labnb.Lab(storage=tmp_path / "store", max_workers=2)  # a run process, workers
    tasks = labnb.sweep(Fit, write(tmp_path, "params.yaml", PARAMS_YAML))
    results = lab.run_tasks(tasks, disable_progress=True)
    assert results[tasks[0]] == pytest.approx((0.5 + 1.5 + 2.5) * 0.1 + 1)

    kept = lab.config_of(tasks[0])
    assert kept is not None and kept.text == PARAMS_YAML and kept.name.endswith("params.yaml")
    assert lab.config_of(Dataset(n=4, noise=0.5)) == kept  # dependencies too
    (run,) = lab.runs()
    assert run.config == kept
    assert {task.config for task in run.record().tasks} == {kept.digest}
    assert "from config" in str(lab.explain(tasks[0])) and kept.name in str(lab.explain(tasks[0]))

    again = labnb.sweep(Fit, lab.config_of(tasks[-1]))  # the same sweep, from what was kept
    assert ids(again) == ids(tasks)
    lab.run_tasks(again, disable_progress=True)
    assert len(lab.runs()) == 1  # all loaded from the cache: nothing ran
    with sqlite3.connect(tmp_path / "store" / "catalog.sqlite") as db:
        assert db.execute("SELECT count(*) FROM configs").fetchone() == (1,)


def test_tasks_built_in_code_have_no_config_and_an_uncached_task_is_a_lookup_error(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "store", runner="serial")
    lab.run_tasks([Dataset(n=2)], disable_progress=True)
    assert lab.config_of(Dataset(n=2)) is None
    assert lab.runs()[0].config is None
    with pytest.raises(LookupError, match="not cached"):
        lab.config_of(Dataset(n=9))


def test_an_object_store_storage_keeps_the_file_too(tmp_path):
    lab = labnb.Lab(storage=f"file://{tmp_path}/objects", runner="serial")
    tasks = labnb.sweep(Fit, write(tmp_path, "params.toml", PARAMS_TOML))
    lab.run_tasks(tasks[:2], disable_progress=True)
    kept = labnb.Lab(storage=f"file://{tmp_path}/objects", runner="serial").config_of(tasks[0])
    assert kept is not None and kept.text == PARAMS_TOML and kept.kind == "toml"


def test_a_kept_config_can_be_saved_edited_and_swept_again(tmp_path):
    config = labnb.ConfigFile(str(tmp_path / "p.yaml"), "data: {n: 1}\nC: [1, 2]\n")
    copy = config.save(tmp_path / "copy.yaml")
    copy.write_text(copy.read_text().replace("[1, 2]", "[1, 2, 3]"))
    assert len(labnb.sweep(Fit, copy)) == 3
    assert config.data == {"data": {"n": 1}, "C": [1, 2]}
    assert "```yaml" in config._repr_markdown_()


# --- %%labtask NAME --config FILE -------------------------------------------


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "labnb")
    shell.run_line_magic("labnb", f"storage {tmp_path / 'default'}")
    shell.user_ns["fast"] = labnb.Lab(storage=tmp_path / "fast", runner="serial")
    yield shell
    shell.run_line_magic("unload_ext", "labnb")


def test_a_cell_sweeps_the_file_s_lists_and_the_line_replaces_or_adds_parameters(shell, tmp_path):
    write(tmp_path, "my cell.yaml", "seed: [1, 2]\nscale: 10\nopts: {depth: 3}\n")
    shell.run_cell_magic(
        "labtask", "scores --config 'my cell.yaml' scale=[1, 2] offset=100 --lab fast --wait",
        "seed * scale + opts['depth'] + offset",
    )  # fmt: skip
    scores = shell.user_ns["scores"]
    assert scores.index.names == ["seed", "scale"]
    assert scores.to_dict() == {(1, 1): 104, (1, 2): 105, (2, 1): 105, (2, 2): 107}
    lab = shell.user_ns["fast"]
    cell_type = _MAGICS[shell]._cell_types["scores"]
    (task, *_) = lab.cached_tasks([cell_type])
    kept = lab.config_of(task)
    assert kept is not None and kept.name == "my cell.yaml" and "seed: [1, 2]" in kept.text


def test_a_cell_with_a_bad_config_file_is_one_usage_error_and_nothing_runs(shell, tmp_path):
    write(tmp_path, "bad.yaml", "seed: [1, 2\n")
    with pytest.raises(UsageError, match=r"%%labtask: bad.yaml, line 2: not valid YAML"):
        shell.run_cell_magic("labtask", "broken --config bad.yaml --lab fast --wait", "seed")
    write(tmp_path, "key.yaml", "seed: 1\n2nd: 3\n")
    with pytest.raises(UsageError, match=r"key.yaml, line 2: 2nd: not a valid parameter name"):
        shell.run_cell_magic("labtask", "broken --config key.yaml --lab fast --wait", "seed")
    assert "broken" not in shell.user_ns
    assert len(shell.user_ns["fast"].cache_table()) == 0
