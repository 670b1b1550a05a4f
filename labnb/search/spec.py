"""What a search is: the task type, the space, the fixed parameters, the metric.

A ``SearchSpec`` is checked once in the caller (a sample task is built from
the fixed parameters and one point of the space, so a missing or unknown
field fails before anything starts), then travels to the run process inside
its ``RunOrder``. It names its study: the same question (type, code version,
space, fixed parameters, direction, metric) is the same study, so asking it
again resumes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LabnbError
from ..model.tasks import is_task_type, meta_of, stored_params

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

STUDY_FILE = "optuna.sqlite"
"""The Optuna (RDB, SQLite) storage of a lab's studies, in its storage directory."""
SAMPLERS = ("tpe", "random")
DIRECTIONS = ("minimize", "maximize")
INSTALL_HINT = "pip install 'labnb[optuna]'"


class SearchError(LabnbError, ValueError):
    """A search that cannot run as asked (the message says why)."""


def import_optuna() -> Any:
    """Optuna, or an ImportError saying how to get it (it is an optional extra)."""
    try:
        import optuna
    except ImportError as error:
        raise ImportError(f"labnb's hyper-parameter search needs Optuna: {INSTALL_HINT}") from error
    return optuna


@dataclass
class SearchSpec:
    """One search, as ``Lab.optimize`` was asked it."""

    task_type: type
    space: dict[str, BaseDistribution]
    fixed: dict[str, Any]
    n_trials: int
    direction: str = "minimize"
    metric: str | Callable[[Any], float] | None = None
    """None: the task's result is the value; a str: the last value of that
    ``labnb.log_metric``; a callable: applied to the result."""
    seed: int | None = None
    sampler: Any = "tpe"
    """``'tpe'``, ``'random'``, a function of a seed giving a sampler, or a sampler."""
    pruner: BasePruner | None = None
    study_name: str = ""
    workers: int = 1
    """How many trials run at once (the Lab's ``max_workers``)."""
    run_id: str = ""
    """The labnb run that drives the study (set when one is started)."""
    sample: Any = field(default=None, repr=False)
    """A task of the type, at one point of the space (checks and identity)."""

    def __post_init__(self) -> None:
        optuna = import_optuna()
        if not is_task_type(self.task_type):
            raise SearchError(f"optimize needs a @labnb.task class, not {self.task_type!r}")
        meta = meta_of(self.task_type)
        if meta.format is None:
            raise SearchError(
                f"{meta.type_name} is not cached (cache=None): a search's trials are cached tasks"
            )
        if not isinstance(self.space, Mapping) or not self.space:
            raise SearchError("space must be a non-empty dict of name -> optuna distribution")
        self.space, self.fixed = dict(self.space), dict(self.fixed)
        for name, distribution in self.space.items():
            if not isinstance(distribution, optuna.distributions.BaseDistribution):
                raise SearchError(
                    f"space[{name!r}] must be an optuna distribution "
                    f"(optuna.distributions.FloatDistribution(...)...), not {distribution!r}"
                )
        unknown = [name for name in (*self.space, *self.fixed) if name not in meta.fields]
        if unknown:
            raise SearchError(
                f"{meta.type_name} has no field {', '.join(map(repr, unknown))} "
                f"(its fields: {', '.join(meta.fields)})"
            )
        both = sorted(set(self.space) & set(self.fixed))
        if both:
            raise SearchError(f"{', '.join(both)}: in the space and fixed at once")
        if not isinstance(self.n_trials, int) or isinstance(self.n_trials, bool):
            raise SearchError(f"n_trials must be an int, not {self.n_trials!r}")
        if self.n_trials < 1:
            raise SearchError(f"n_trials must be at least 1, not {self.n_trials}")
        if self.direction not in DIRECTIONS:
            raise SearchError(f"direction must be 'minimize' or 'maximize', not {self.direction!r}")
        if not (self.metric is None or isinstance(self.metric, str) or callable(self.metric)):
            raise SearchError(f"metric must be None, a metric's name or a function: {self.metric}")
        if isinstance(self.sampler, str) and self.sampler not in SAMPLERS:
            raise SearchError(f"sampler must be one of {SAMPLERS}, a function or a sampler")
        self.sample = self.task(
            {name: _a_point(distribution) for name, distribution in self.space.items()}
        )
        self.study_name = self.study_name or self._default_name()

    def task(self, params: Mapping[str, Any]) -> Any:
        """The trial's task: the fixed parameters and these suggested ones."""
        return self.task_type(**self.fixed, **params)

    @property
    def metric_name(self) -> str | None:
        """The logged metric the value is (reported to the pruner at each step)."""
        return self.metric if isinstance(self.metric, str) else None

    @property
    def describe_metric(self) -> str:
        if self.metric is None:
            return "result"
        if isinstance(self.metric, str):
            return self.metric
        return getattr(self.metric, "__name__", "metric")

    def _default_name(self) -> str:
        """``Type-<digest>``: the digest of everything that makes it the same question."""
        from optuna.distributions import distribution_to_json

        meta = meta_of(self.task_type)
        params = stored_params(self.sample)
        metric = self.metric
        question = {
            "type": f"{meta.module}.{meta.type_name}",
            "code_version": meta.code_version,
            "space": {name: distribution_to_json(d) for name, d in sorted(self.space.items())},
            "fixed": {name: params[name] for name in sorted(params) if name not in self.space},
            "direction": self.direction,
            "metric": metric
            if metric is None or isinstance(metric, str)
            else f"{getattr(metric, '__module__', '')}.{getattr(metric, '__qualname__', metric)}",
        }
        text = json.dumps(question, sort_keys=True, default=str)
        return f"{meta.type_name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    def sampler_for(self, number: int) -> BaseSampler:
        """The sampler that suggests trial ``number``.

        A new one per trial, seeded from ``seed`` and the trial's number: a
        resumed study (a new process, a new sampler) goes on where it was
        instead of replaying the first seeded suggestions. Optuna's samplers
        keep what they learn in the study, so nothing is lost by it. A sampler
        object given by the user is used as it is.
        """
        optuna = import_optuna()
        seed = None if self.seed is None else trial_seed(self.seed, number)
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if isinstance(self.sampler, optuna.samplers.BaseSampler):
            return self.sampler
        made = self.sampler(seed)
        if not isinstance(made, optuna.samplers.BaseSampler):
            raise SearchError(f"the sampler function returned {made!r}, not an optuna sampler")
        return made

    def value(self, result: Any, metrics: Mapping[str, float]) -> float:
        """A finished trial's value, from its result or what it logged; ValueError if none."""
        if isinstance(self.metric, str):
            if self.metric not in metrics:
                logged = ", ".join(sorted(metrics)) or "none"
                raise ValueError(f"the task logged no metric {self.metric!r} (it logged: {logged})")
            value: Any = metrics[self.metric]
        elif self.metric is None:
            value = result
        else:
            value = self.metric(result)
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            what = "the metric function" if callable(self.metric) else "the task"
            raise ValueError(
                f"{what} returned {type(value).__name__} {value!r:.100}, not a number: "
                "give optimize a metric= (a logged metric's name or a function of the result)"
            )
        if math.isnan(value):
            raise ValueError(f"the {self.describe_metric} is NaN")
        return float(value)


def trial_seed(seed: int, number: int) -> int:
    """A seed for trial ``number`` of a search seeded with ``seed``."""
    digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _a_point(distribution: BaseDistribution) -> Any:
    """Some value the distribution can give (the sample task's)."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return choices[0]
    return distribution.to_external_repr(getattr(distribution, "low", 0))
