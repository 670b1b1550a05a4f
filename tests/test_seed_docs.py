"""labtech's tutorial and cookbook (``/work/shared/seeds`` or ``$LABNB_SEEDS``), run under labnb.

Every Python code block of each document runs, in order, in one namespace (as
the cells of one notebook), with the word ``labtech`` replaced by ``labnb``
and nothing else changed, except the typos the documents are known to have
(``FIXES``: each is a plain mistake in the text, not a labnb difference) and
the blocks that need the internet (``NEEDS_INTERNET``). ``test_recipes.py``
holds the same recipes hand-written with checks of their results; this
module checks that the documents' own code runs as written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

SEEDS = Path(os.environ.get("LABNB_SEEDS", "/work/shared/seeds"))
DOCUMENTS = {
    "tutorial": "000_85b6fb2836cd0f02.txt",
    "cookbook": "001_a9c7ede7cd064fc5.txt",
}
BLOCK = re.compile(r"^``` ?(\{[^}\n]*\})?\n(.*?)^```", re.MULTILINE | re.DOTALL)

FIXES = {
    # A missing parenthesis.
    "np.arange(len(prob_y), prob_y.argmax(axis=1)]": (
        "np.arange(len(prob_y)), prob_y.argmax(axis=1)]"
    ),
    # The sklearn module `datasets` is meant to be the DATASETS dict.
    "for dataset_key in datasets.keys()": "for dataset_key in DATASETS.keys()",
    # The final MinMaxProbabilityExperiment's field is called `experiment`.
    "MinMaxProbabilityExperiment(\n        classifier_experiment=classifier_experiment,\n    )\n"
    "    for classifier_experiment in classifier_experiments\n]\n\nevaluation_task": (
        "MinMaxProbabilityExperiment(\n        experiment=classifier_experiment,\n    )\n"
        "    for classifier_experiment in classifier_experiments\n]\n\nevaluation_task"
    ),
    # Iris experiments scored against the digits labels (twice): use each one's own dataset.
    "'DATASETS': DATASETS,\n    },\n)\n\nresults = lab.run_tasks(classifier_experiments)\n"
    "print({\n    experiment: log_loss(digits_y, prob_y)": (
        "'DATASETS': DATASETS,\n    },\n)\n\nresults = lab.run_tasks(classifier_experiments)\n"
        "print({\n    experiment: log_loss(DATASETS[experiment.dataset_key]['y'], prob_y)"
    ),
    "log_loss(digits_y, experiment.result)": (
        "log_loss(self.context['DATASETS'][getattr(experiment, 'experiment', experiment)"
        ".dataset_key]['y'], experiment.result)"
    ),
}
PRELUDE = {
    # The tutorial uses `np` without importing it (a notebook kernel often has it already).
    "tutorial": "import numpy as np\n",
    "cookbook": "",
}
NEEDS_INTERNET = ("fetch_openml",)


def code_blocks(document: str) -> list[str]:
    text = (SEEDS / DOCUMENTS[document]).read_text()
    blocks = []
    for attributes, body in BLOCK.findall(text):
        if attributes and ".python" not in attributes:
            continue  # `%pip install ...` blocks
        blocks.append(body)
    return blocks


def as_labnb(block: str) -> str:
    for wrong, right in FIXES.items():
        block = block.replace(wrong, right)
    return block.replace("labtech", "labnb")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    if not SEEDS.is_dir():
        pytest.skip(f"the seed documents are not at {SEEDS} (set LABNB_SEEDS)")
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    mlflow.set_tracking_uri(None)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_every_code_block_runs_under_labnb(document, workdir):
    namespace: dict = {"__name__": "__main__"}
    exec(PRELUDE[document], namespace)
    skipped = 0
    for number, block in enumerate(code_blocks(document), start=1):
        if any(marker in block for marker in NEEDS_INTERNET):
            skipped += 1
            continue
        source = as_labnb(block)
        try:
            exec(compile(source, f"<{document} block {number}>", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{document} block {number} failed:\n{source}") from error
    assert skipped == {"tutorial": 0, "cookbook": 1}[document]
    assert "labtech" not in "".join(as_labnb(block) for block in code_blocks(document))


def test_the_fixes_and_the_blocks_are_found():
    """Each fix must still match its document: a fix that matches nothing hides nothing."""
    if not SEEDS.is_dir():
        pytest.skip(f"the seed documents are not at {SEEDS}")
    text = "".join(block for document in DOCUMENTS for block in code_blocks(document))
    assert [wrong for wrong in FIXES if wrong not in text] == []
    assert len(code_blocks("tutorial")) == 12 and len(code_blocks("cookbook")) == 9
