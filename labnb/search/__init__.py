"""Hyper-parameter search: an Optuna study whose trials are labnb tasks.

``lab.optimize(Fit, space={...}, n_trials=40, direction="maximize",
metric="val_auc")`` searches the fields of ``Fit`` named in ``space`` (Optuna
distributions), with the other fields ``fixed``, and returns a ``Search``.

How the pieces meet
-------------------
- **One run, growing.** The search is a single labnb run owned by a run
  process (``engine/run_process.py``), like ``lab.submit``: it outlives the
  kernel, shows in ``lab.runs()`` and in the usual widget. Its loop
  (``loop.SearchLoop``, a ``RunLoop``) asks the study for a trial whenever a
  worker is about to free, so ``max_workers`` trials run at once with one
  more queued, and Optuna's ask/tell work overlaps the trials. Measured
  (``benchmarks/search_overhead.py``): a run process per trial costs about
  0.12 s of start-up per trial, which 20 trials of 0.5 s on 2 workers cannot
  afford; the growing run costs a start-up once.
- **Trials are ordinary tasks.** A trial is ``Fit(**fixed, **trial.params)``,
  planned, leased, cached and logged like any task. A suggestion that is
  already cached is told from the cache at once, nothing computed (the
  trial's ``labnb_cached`` attribute says so).
- **The study is in the storage**: ``<storage>/optuna.sqlite``, Optuna's
  RDB storage, one study per question (``spec.SearchSpec.study_name``: the
  task type and its code version, the space, the fixed parameters, the
  direction, the metric). ``n_trials`` is how many trials the study should
  have: a second ``optimize`` (after a kernel restart, in another process)
  runs only those missing, and one with a larger ``n_trials`` adds the
  difference. While a search runs, ``optimize`` in another kernel follows
  it instead of starting a second driver.
- **Reproducible with a seed.** Each trial gets a sampler seeded from the
  seed and the trial's number (a resumed study does not replay its first
  suggestions), and trials are told in the order they were asked, trial
  ``k`` asked once trial ``k - window`` is told (``loop``), so the same
  seeded search with the same ``max_workers`` suggests the same parameters
  however long each trial took: rerun over a cache that has them (another
  study name, a deleted study), it computes nothing. Without a seed,
  trials are told as they end: no worker waits for a slow trial.
- **Failures and pruning.** A trial whose task fails is told failed, with
  its error (``labnb_error``), and the search goes on. With a pruner and a
  ``metric`` the task logs with steps (``labnb.log_metric(name, v,
  step=i)``), each step is reported to the study as it arrives from the
  worker; when the pruner says so, the worker is stopped (process runner)
  and the trial told pruned. Pruning decisions depend on when other trials
  report, so a pruned search is not reproducible step for step.
- **Interrupted trials** (a cancel, a killed run process) are told failed,
  marked interrupted, not counted, and enqueued to be asked again first.

- **A file can describe the search** (``config.read_config``): the
  workshop's step 5, configuration kept apart from the code.

Optuna is an optional extra (``pip install 'labnb[optuna]'``): nothing here
imports it until a search starts.
"""

from __future__ import annotations

from .config import read_config
from .handle import Search
from .spec import SearchError, SearchSpec

__all__ = ["Search", "SearchError", "SearchSpec", "read_config"]
