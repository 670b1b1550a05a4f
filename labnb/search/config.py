"""A search described in a file, apart from the code: ``read_config("search.yaml")``.

The file is a mapping of the task type's fields, read the way a sweep file
reads them (a scalar is fixed, a list is what varies), plus one ``search``
entry for the search itself::

    search: {n_trials: 30, direction: maximize, metric: val_auc, seed: 0}
    folds: 5                                # fixed
    kernel: [rbf, sigmoid]                  # one of these (categorical)
    C: {low: 0.01, high: 1000, log: true}   # a range: float, or int if both ends are
    degree: {low: 2, high: 5, step: 1}

``read_config`` returns the keyword arguments of ``Lab.optimize``
(``space``, ``fixed``, ``n_trials`` and what ``search`` gives), so
``lab.optimize(Fit, **read_config("search.yaml"))`` runs it; a file that
describes the same search as code does is the same study. YAML needs PyYAML;
``.json`` files need nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .spec import SearchError, import_optuna

SEARCH_KEY = "search"
SETTINGS = ("n_trials", "direction", "metric", "seed", "sampler", "study_name")
RANGE_KEYS = {"low", "high", "log", "step"}


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``Lab.optimize``'s keyword arguments from a ``.yaml``/``.yml``/``.json`` file."""
    path = Path(path)
    data = _load(path)
    if not isinstance(data, dict):
        raise SearchError(f"{path}: the file must be a mapping of field names to values")
    settings = data.pop(SEARCH_KEY, None) or {}
    if not isinstance(settings, dict):
        raise SearchError(f"{path}: {SEARCH_KEY!r} must be a mapping ({', '.join(SETTINGS)})")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SearchError(
            f"{path}: {SEARCH_KEY}.{unknown[0]} is not a search setting ({', '.join(SETTINGS)})"
        )
    if "n_trials" not in settings:
        raise SearchError(f"{path}: {SEARCH_KEY}.n_trials is missing (how many trials)")
    space, fixed = {}, {}
    for name, value in data.items():
        if isinstance(value, list):
            space[name] = _categorical(path, name, value)
        elif isinstance(value, dict):
            space[name] = _range(path, name, value)
        else:
            fixed[name] = value
    if not space:
        raise SearchError(f"{path}: nothing to search (no list and no range among the fields)")
    return {"space": space, "fixed": fixed, **settings}


def _load(path: Path) -> Any:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix not in (".yaml", ".yml"):
        raise SearchError(f"{path}: a search file is .yaml, .yml or .json")
    try:
        import yaml
    except ImportError as error:
        raise ImportError(f"reading {path} needs PyYAML: pip install pyyaml") from error
    return yaml.safe_load(text)


def _categorical(path: Path, name: str, choices: list[Any]) -> Any:
    if not choices:
        raise SearchError(f"{path}: {name} is an empty list: nothing to choose from")
    for choice in choices:
        if not isinstance(choice, (str, int, float, bool, type(None))):
            raise SearchError(f"{path}: {name}: {choice!r} cannot be a choice (a scalar can)")
    return import_optuna().distributions.CategoricalDistribution(choices)


def _range(path: Path, name: str, spec: dict[str, Any]) -> Any:
    distributions = import_optuna().distributions
    keys = set(spec)
    if not {"low", "high"} <= keys or not keys <= RANGE_KEYS:
        raise SearchError(
            f"{path}: {name} must be a range {{low, high}} (with log or step), not {spec!r}"
        )
    low, high = spec["low"], spec["high"]
    log, step = bool(spec.get("log", False)), spec.get("step")
    try:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and (
            step is None or isinstance(step, int)
        ):
            return distributions.IntDistribution(low, high, log=log, step=step or 1)
        return distributions.FloatDistribution(float(low), float(high), log=log, step=step)
    except (TypeError, ValueError) as error:
        raise SearchError(f"{path}: {name}: {error}") from None
