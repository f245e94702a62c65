"""Hyper-parameter search: distributions in a space's training values and its ``search:`` block.

Any value under ``train:``, ``teacher_train:`` or ``per_model.<model>`` may be a distribution:
``{choice: [a, b, ...]}``, ``{uniform: [low, high]}``, ``{loguniform: [low, high]}`` or
``{randint: [low, high]}`` (integers low..high, both included). ``search: {algorithm: random}``
draws ``num_samples`` configurations; each sample × every seed × every grid combination is a trial.
``scheduler: asha`` stops a sample's trial early when it trails the other samples of its
configuration (``orchestrator/run/asha.py``). ``algorithm: optuna`` asks Tune's ``OptunaSearch`` for
``num_samples`` configurations of each grid combination, one study each, against fixed teachers
(``orchestrator/run/optuna_search.py``); it records what it was told, so a re-run resumes them.

The planner draws the samples, not Tune: a drawn value is a plain value of a trial's config, so the
trial has a content key like any other. A re-run plans the same trials and resumes them instead of
drawing new ones, and a dry run shows what will run. Each value has its own generator, seeded by
(``search.seed``, sample index, the value's place in the space, e.g. ``train.lr``): sample k keeps
its values when ``num_samples`` grows, when another distribution is added or the grid changes,
and a value under ``teacher_train:`` is drawn independently of the same key under ``train:``.

``search.metric`` is a per-epoch metric the space's task logs (``metrics_of``): ``train_loss`` or
a ``val_<metric>`` of the task, by default its main one (SST-2's ``val_accuracy``, MRPC's
``val_f1``, CoLA's ``val_matthews``), so a search optimises what the task's report is headed by.
The task is the space's ``data.task``, so the sweep spec settles it (``SearchSpec.for_task``).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from trainers.config import ConfigError, Hyper
from trainers.data import tasks

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
# A bound is checked through the schema as the key's own value would be (pydantic, then
# Hyper.__post_init__), so a distribution accepts exactly the values a plain key accepts.
_HYPER = TypeAdapter(Hyper)
_HINTS = get_type_hints(Hyper)
_FIELDS = {f.name: f for f in dataclasses.fields(Hyper)}


def metrics_of(task: str) -> tuple[str, ...]:
    """The per-epoch metrics every trial of ``task`` reports (quiz_loss is MetaDistil's only), the
    default first: what may rank a search and what its scheduler judges a trial on. Each of the
    task's ``val_<metric>``, its main one first (``trainers.data.tasks``), then ``train_loss``."""
    return (*(f"val_{m}" for m in tasks.get(task).metrics), "train_loss")


class SearchSpec(BaseModel):
    """The space's ``search:`` block. ``grid`` (the default) runs the grid as written and takes no
    distribution; ``random`` draws ``num_samples`` configurations from ``seed``; ``optuna`` asks
    Optuna's TPE sampler (seeded by ``seed``) for ``num_samples`` configurations of each grid
    combination, learning from each one's result at its last epoch. ``metric`` and ``mode`` say
    which per-epoch metric ranks a search (and what Optuna and ASHA optimise) and in which
    direction; ``metric``'s default here is SST-2's, and ``for_task`` makes it the space's task's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["grid", "random", "optuna"] = "grid"
    """`grid` (as written), `random` (drawn) or `optuna` (TPE, one study per combination)."""
    num_samples: int = Field(1, ge=1)
    """Configurations drawn (per grid combination for `optuna`)."""
    seed: int = 0
    """Seeds the draws and Optuna's sampler."""
    metric: str = "val_accuracy"
    """Ranks a search; Optuna and ASHA optimise it. Default: the task's main `val_` metric."""
    mode: Literal["max", "min"] = "max"
    """`max` or `min` (for `train_loss`)."""
    # Early stopping: ASHA judges a trial at epochs grace_period × reduction_factor^k.
    scheduler: Literal["none", "asha"] = "none"
    """`none` or `asha` (early stopping; needs `random` and `num_samples` >= 2)."""
    grace_period: int = Field(1, ge=1)
    """ASHA: epochs before a trial is first judged; below `train.epochs`."""
    reduction_factor: float = Field(2.0, ge=2)
    """ASHA: judged at `grace_period` × `reduction_factor`^k; keeps the best 1/factor."""
    # Trials side by side, on top of what the resources allow: ASHA compares a trial with those
    # that reached an epoch before it, so fewer at once gives it more to compare with.
    max_concurrent: int | None = Field(None, ge=1)
    """Trials side by side at most, on top of `resources`."""

    @model_validator(mode="after")
    def _samples_need_random(self) -> SearchSpec:
        if self.algorithm == "grid" and self.num_samples > 1:
            raise ValueError(f"num_samples {self.num_samples} draws samples, which the grid does not: "
                             "set algorithm: random or optuna (and put distributions under train:)")
        return self

    @model_validator(mode="after")
    def _asha_needs_samples(self) -> SearchSpec:
        """ASHA compares the samples of one configuration (``orchestrator/run/asha.py``): without two
        of them it has nothing to compare, and its settings without it would be ignored."""
        if self.scheduler == "none":
            given = sorted({"grace_period", "reduction_factor"} & self.model_fields_set)
            if given:
                raise ValueError(f"{given[0]} is ASHA's setting, which scheduler none does not use: "
                                 "set scheduler: asha, or remove it")
        elif self.algorithm == "optuna":
            raise ValueError("scheduler asha judges the samples of algorithm random; with optuna "
                             "set scheduler: none (every suggestion trains to its end)")
        elif self.algorithm != "random" or self.num_samples < 2:
            raise ValueError("scheduler asha stops the samples that trail the others of their "
                             "configuration, so it needs some: set algorithm: random and num_samples >= 2")
        return self

    def for_task(self, task: str) -> SearchSpec:
        """This search for a space of ``task``: ``metric`` one the task's trials log, by default its
        main validation metric. Only the whole space knows its task (``data.task``), so the sweep
        spec calls this once it has read both; a metric the task does not log is refused here,
        before any trial trains on a search that could not rank it."""
        choices, title = metrics_of(task), tasks.get(task).title
        if "metric" not in self.model_fields_set:
            return self if self.metric == choices[0] else self.model_copy(update={"metric": choices[0]})
        if self.metric not in choices:
            reason = (f"{title} trials do not log it; use one of {', '.join(choices)} (default "
                      f"{choices[0]}, {title}'s main metric)")
            raise ConfigError(f"search.metric={self.metric!r}: {reason}", "metric", self.metric, reason)
        return self

    def check_epochs(self, epochs: int, drawn: bool) -> None:
        """ASHA judges no trial before ``grace_period`` epochs nor at its last one, so a grace
        period of ``epochs`` (``train.epochs``, its lowest draw if ``drawn``) or more stops nothing."""
        if self.scheduler == "asha" and self.grace_period >= epochs:
            raise ValueError(f"search.grace_period {self.grace_period} >= train.epochs {epochs}"
                             f"{' (its lowest draw)' if drawn else ''}: ASHA could stop no trial before "
                             "its end; lower grace_period")


@dataclass(frozen=True)
class Distribution:
    """``kind`` in ``DISTRIBUTIONS``; ``args`` the choices or the two bounds, already of the key's
    type (a YAML ``1e-5``, which PyYAML reads as text, is the float a plain value would be)."""

    kind: str
    args: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        """One value; a float keeps its full precision (it is the trial's config)."""
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        low, high = self.args
        if self.kind == "randint":
            return int(rng.integers(low, high, endpoint=True))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        return float(rng.uniform(low, high))

    def lowest(self) -> Any:
        return min(self.args)

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(short(a) for a in self.args)})"


def draw(dist: Distribution, seed: int, sample: int, place: str) -> Any:
    """Sample ``sample``'s value of the distribution at ``place`` (``train.lr``), the same in any run:
    crc32, unlike ``hash``, does not change between Python processes."""
    return dist.draw(np.random.default_rng([seed, sample, zlib.crc32(place.encode())]))


def split(section: str, values: Any) -> tuple[Any, dict[str, Distribution]]:
    """A ``train:``-like section → (its plain values, its distributions by key). ``section`` names
    it in errors (``per_model.roberta``). A key the schema does not know stays with the plain
    values, whose check names it and the closest key."""
    if not isinstance(values, dict):
        return values, {}
    plain = {k: v for k, v in values.items() if not (isinstance(v, dict) and k in _FIELDS)}
    return plain, {k: parse(f"{section}.{k}", k, v) for k, v in values.items() if k not in plain}


def parse(where: str, key: str, value: dict[str, Any]) -> Distribution:
    """One distribution, or a ``ValueError`` in one line naming ``where``, the value and the fix."""
    def refuse(reason: str) -> ValueError:
        return ValueError(f"{where} = {value!r}: {reason}")

    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise refuse(f"not a distribution; write one of {', '.join(DISTRIBUTIONS)} "
                     "(e.g. {loguniform: [1.0e-5, 1.0e-3]}) or a plain value")
    kind, args = next(iter(value.items()))
    fits = _fitting(key)
    if not fits:
        why = ("changes no result, so there is nothing to search" if not _FIELDS[key].metadata.get(
            "keyed", True) else "is free text, which no distribution draws")
        raise refuse(f"{key} {why}; give one value")
    if kind not in fits:
        takes = ({"uniform": "real numbers", "randint": "integers"}.get(fits[0])
                 or ("true or false" if _HINTS[key] is bool else "one of its names"))
        raise refuse(f"{kind} draws {'integers' if kind == 'randint' else 'real numbers'} but {key} "
                     f"takes {takes}; use {' or '.join(fits)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise refuse("choice takes a non-empty list of values, e.g. {choice: [kl, mse]}")
        picks = tuple(_accepted(key, v, refuse) for v in args)
        if len(set(picks)) != len(picks):
            raise refuse("a value is listed twice; list each once")
        return Distribution(kind, picks)
    if not isinstance(args, list) or len(args) != 2:
        example = "[1, 4]" if kind == "randint" else "[0.1, 0.5]"
        raise refuse(f"{kind} takes [low, high], e.g. {{{kind}: {example}}}")
    low, high = (_accepted(key, v, refuse) for v in args)
    if not low < high:
        raise refuse(f"low {low!r} must be below high {high!r}; swap them, or write one plain value")
    if kind == "loguniform" and low <= 0:
        raise refuse(f"loguniform draws the logarithm, so low {low!r} must be > 0")
    return Distribution(kind, (low, high))


def _fitting(key: str) -> tuple[str, ...]:
    """The distributions whose every value is of ``key``'s type: real numbers any but randint,
    integers randint or choice, named options and booleans choice only; a setting that changes no
    result (the evaluation batch) and free text none."""
    hint = _HINTS[key]
    if not _FIELDS[key].metadata.get("keyed", True):
        return ()
    if hint is float:
        return ("uniform", "loguniform", "choice")
    if hint is int or set(get_args(hint)) == {int, type(None)}:
        return ("randint", "choice")
    if hint is bool or get_origin(hint) is Literal:
        return ("choice",)
    return ()


def _accepted(key: str, value: Any, refuse: Callable[[str], ValueError]) -> Any:
    """``value`` as the key's own value would be read, or a refusal with the schema's reason."""
    # pydantic would read true as 1.0 and "yes" as true: a boolean is a boolean key's value only.
    if isinstance(value, (dict, list)) or isinstance(value, bool) != (_HINTS[key] is bool):
        raise refuse(f"{key} {value!r} is refused (not one value of {key}'s type)")
    try:
        return getattr(_HYPER.validate_python({key: value}), key)
    except ValidationError as error:
        first = error.errors()[0]
        cause = first.get("ctx", {}).get("error")
        reason = (cause.reason if isinstance(cause, ConfigError) and cause.reason
                  else first["msg"].removeprefix("Value error, "))
        raise refuse(f"{key} {value!r} is refused ({reason})") from None


def short(value: Any) -> str:
    """A drawn value for names and the dry run: 3 significant digits (the config keeps them all)."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
