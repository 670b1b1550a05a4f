"""A search described in a file, apart from the code: ``read_config("search.yaml")``.

The file is a mapping of the task type's fields, read as ``labnb.sweep``
reads a sweep file (the same reader, ``model.config_files``: YAML or TOML,
``1e-3`` a float, a key given twice an error), where a scalar is fixed and
a list is what varies, plus one ``search`` entry for the search itself::

    search: {n_trials: 30, direction: maximize, metric: val_auc, seed: 0}
    folds: 5                                # fixed
    kernel: [rbf, sigmoid]                  # one of these (categorical)
    C: {low: 1e-2, high: 1e3, log: true}    # a range: float, or int if both ends are
    degree: {low: 2, high: 5, step: 1}

``read_config`` returns the keyword arguments of ``Lab.optimize``
(``space``, ``fixed``, ``n_trials`` and what ``search`` gives), so
``lab.optimize(Fit, **read_config("search.yaml"))`` runs it; a file that
describes the same search as code does is the same study. A bad file is one
``ConfigError`` naming the file, the key and its line.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from ..model.config_files import ConfigFile, Item, as_config
from .spec import import_optuna

SEARCH_KEY = "search"
SETTINGS = ("n_trials", "direction", "metric", "seed", "sampler", "study_name")
RANGE_KEYS = ("low", "high", "log", "step")
_SCALARS = (str, int, float, bool, type(None))


def read_config(config: str | os.PathLike[str] | dict[str, Any] | ConfigFile) -> dict[str, Any]:
    """``Lab.optimize``'s keyword arguments from a ``.yaml``/``.yml``/``.toml`` file
    (or a dict already loaded)."""
    source = as_config(config)
    root = source.read()

    def error(key: str, item: Item | None, problem: str) -> ConfigError:
        return ConfigError(source.name, key, None if item is None else item.line, problem)

    if not isinstance(root.value, dict):
        raise error("", root, "the file must be a mapping of field names to values")
    fields = dict(root.value)
    settings_item = fields.pop(SEARCH_KEY, None)
    if settings_item is None or not isinstance(settings_item.value, dict):
        raise error(SEARCH_KEY, settings_item, f"a mapping of {', '.join(SETTINGS)} is needed")
    settings = settings_item.value
    for key, item in settings.items():
        if key not in SETTINGS:
            raise error(
                f"{SEARCH_KEY}.{key}", item, f"not a search setting ({', '.join(SETTINGS)})"
            )
    if "n_trials" not in settings:
        raise error(f"{SEARCH_KEY}.n_trials", settings_item, "missing: how many trials")
    space, fixed = {}, {}
    for name, item in fields.items():
        if isinstance(item.value, list):
            choices = item.plain()
            if not choices or not all(isinstance(c, _SCALARS) for c in choices):
                raise error(name, item, "a choice is a non-empty list of scalars")
            space[name] = import_optuna().distributions.CategoricalDistribution(choices)
        elif isinstance(item.value, dict):
            space[name] = _range(item.plain(), lambda problem, n=name, i=item: error(n, i, problem))
        else:
            fixed[name] = item.value
    if not space:
        raise error("", root, "nothing to search: no field is a list or a {low, high} range")
    return {"space": space, "fixed": fixed, **{key: item.plain() for key, item in settings.items()}}


def _range(spec: dict[str, Any], error: Any) -> Any:
    distributions = import_optuna().distributions
    if not {"low", "high"} <= set(spec) or not set(spec) <= set(RANGE_KEYS):
        raise error(f"a range is {{low, high}}, with log or step if needed, not {spec!r}")
    low, high, step = spec["low"], spec["high"], spec.get("step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise error(f"log must be true or false, not {log!r}")
    integral = [isinstance(v, int) and not isinstance(v, bool) for v in (low, high)]
    try:
        if all(integral) and (step is None or isinstance(step, int)):
            return distributions.IntDistribution(low, high, log=log, step=step or 1)
        return distributions.FloatDistribution(float(low), float(high), log=log, step=step)
    except (TypeError, ValueError) as problem:
        raise error(str(problem)) from None
