"""The registry of training methods: what the loop, the planner, the dry run's estimate, the labels
and the report know of a method, declared once, in the method's own module as ``METHOD``.

A method's module (``finetune.py``, ``kd.py``, ``metadistil.py``) holds its training step and a
:class:`Method` saying
- ``reads``: the distillation settings its step reads (``Hyper``'s ``DISTILS`` fields), so that a
  check of one (MetaDistil's k-step pilot against several workers) finds the methods it concerns.
  A content key still holds every distillation setting of a distilling trial, as it always has:
  keying by ``reads`` would change stored trials' keys and retrain them;
- ``teachers``: what it needs of teachers: ``none`` (it trains on labels alone), ``frozen`` (their
  outputs are fixed: cached once, or run live on each batch) or ``trainable`` (the trial updates
  them, so they are checkpointed with the student);
- ``build``: how its step is made for a trial (:class:`StepInputs` → a :class:`Step`);
- ``cost``: its cost model for ``--dry-run``: seconds per training example of one of its epochs and
  seconds once per trial, from the per-example costs of the student and the teachers
  (``orchestrator/plan/estimate.py`` holds the units and the rest of the trial);
- ``variant_key``: the config field of a cheaper variant (MetaDistil's ``meta_every``: a meta step
  on every n-th batch only), whose value above 1 the run's tag, name and label show;
- ``label``, ``marker`` and ``colour``: its name in the tables and its look in the plots;
  ``section``: the Table 1 section of a teacher set's row ("" for none: the baseline's rows are the
  models'); ``implied``: whether Table 1 owes the method's row for a teacher set that any method
  distilled from (the original work's table: KD from each single teacher, MetaDistil from every
  set); ``compared_with``: the method each of its rows is also tested against (paired, same
  teachers and student), beside the fine-tuned student;
- ``cohort``: whether it trains a cohort in one trial (the student and its ``peers``, each then
  its own model: its own folder, MLflow run and report row).

Adding a method is its module, its tests and one line in ``MODULES``; the loop, the planner, the
estimate and the report read it from here. The modules are imported on first use, not at import:
a config check needs the method names, and the methods' modules import the config.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from trainers.config import TrainConfig
    from trainers.data.batches import Batch
    from trainers.engine.loop import Trial
    from trainers.engine.update import StudentUpdate, TeacherUpdate

MODULES = tuple(f"{__package__}.{name}" for name in ("finetune", "kd", "metadistil", "mutual"))


class Teachers(str, Enum):
    NONE = "none"
    FROZEN = "frozen"
    TRAINABLE = "trainable"


class Step:
    """One training step of a method: it takes a batch and reports its metrics (``train_loss``,
    and e.g. ``quiz_loss``). The defaults are a step's that holds nothing across batches and
    updates no teacher."""

    needs_teachers = False  # whether batches carry the teachers' own tokenization

    def __call__(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    def finish_epoch(self) -> dict[str, float]:
        """What the step still holds at an epoch's end, trained (MetaDistil's buffered batches)."""
        return {}

    def state(self) -> dict[str, int]:
        """Counters a resumed trial needs to take the same steps (checkpointed with the models)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Set the counters of ``state`` (what :meth:`state` saved)."""

    def trained_teachers(self) -> list[tuple[torch.nn.Module, TeacherUpdate]]:
        """The teachers this step updates, with their optimizers: checkpointed beside the student."""
        return []

    def trained_peers(self) -> list[StudentUpdate]:
        """A cohort's other members' optimizer steps (the trial's peers, in order): checkpointed
        beside the student."""
        return []


@dataclass(frozen=True)
class StepInputs:
    """What a method's step is built from: the trial, the student's optimizer step, the number of
    the student's steps in an epoch, and the frozen teachers' logits on the training split by
    teacher index (cached by the loop)."""

    trial: Trial
    update: StudentUpdate
    steps_per_epoch: int
    teacher_logits: Callable[[int], torch.Tensor]


@dataclass(frozen=True)
class CostInputs:
    """What a method's cost model reads: the trial's config and the per-example training cost
    ``c(m)`` of its student, of each teacher and of each peer, in seconds
    (``orchestrator/plan/estimate.py``)."""

    config: TrainConfig
    student: float
    teachers: tuple[float, ...]
    forward_share: float  # a forward pass at evaluation's batch size, as a share of ``c(m)``
    peers: tuple[float, ...] = ()  # a cohort's other members' ``c(m)``


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    teachers: Teachers
    build: Callable[[StepInputs], Step]
    cost: Callable[[CostInputs], tuple[float, float]]
    marker: str
    colour: str
    section: Callable[[tuple[str, ...]], str] = lambda teachers: ""
    implied: Callable[[tuple[str, ...]], bool] = lambda teachers: False
    compared_with: str = ""
    variant_key: str = ""
    reads: tuple[str, ...] = ()
    cohort: bool = False

    @property
    def distils(self) -> bool:
        return self.teachers is not Teachers.NONE

    def variant(self, config: TrainConfig) -> int:
        """The cheaper variant's value for ``config``: 1 (none) unless the method has one."""
        return getattr(config, self.variant_key) if self.variant_key else 1


@cache
def registry() -> dict[str, Method]:
    """Every method by name, in ``MODULES`` order."""
    methods = [importlib.import_module(module).METHOD for module in MODULES]
    return {method.name: method for method in methods}


def get(name: str) -> Method:
    return registry()[name]


def names() -> tuple[str, ...]:
    return tuple(registry())


def baseline() -> Method:
    """The method that trains one model on labels alone: teachers' own training and the students'
    baseline."""
    return next(m for m in registry().values() if not m.distils and not m.cohort)


def known(name: str) -> Method | None:
    """The method of a stored run's tag, or ``None`` for one this version does not register."""
    return registry().get(name)


def check_name(name: Any) -> str | None:
    """Why ``name`` is not a method, in words (``None`` if it is one)."""
    known = names()
    if name in known:
        return None
    return "Input should be " + ", ".join(f"'{n}'" for n in known[:-1]) + f" or '{known[-1]}'"
