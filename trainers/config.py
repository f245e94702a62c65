"""The hyper-parameter schema: typed trial configuration, validated once in ``__post_init__``.

These dataclasses are the only definition of every training setting, its default and its range.
The sweep's space reads its ``train:``, ``data:`` and ``models:`` sections straight into them
(pydantic validates a dataclass by its annotations and then runs its ``__post_init__``), and checks
the lists of its grid blocks (``noise_p``, ``warmup_epochs``, teacher sets, ``teacher_weights``)
with the ``check_*`` functions a trial's config runs, so a value means the same, and is refused
with the same words, whether it comes from a YAML file or from code; the rest of the code trusts them.

A bad value raises :class:`ConfigError`, whose message names the key, the value and the fix in
one line, so every entry point can print it and exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from trainers.data.tasks import task_error
from trainers.errors import UserError
from trainers.methods import registry as methods

Size = Literal["tiny", "real"]
SoftLoss = Literal["kl", "mse"]
PkdLayers = Literal["skip", "last"]
Schedule = Literal["linear", "constant"]
TestSplit = Literal["heldout", "labeled", "sst2-test"]
Precision = Literal["fp32", "tf32", "bf16"]
SIZES: tuple[str, ...] = get_args(Size)
SOFT_LOSSES: tuple[str, ...] = get_args(SoftLoss)
PKD_LAYERS: tuple[str, ...] = get_args(PkdLayers)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
TEST_SPLITS: tuple[str, ...] = get_args(TestSplit)
PRECISIONS: tuple[str, ...] = get_args(Precision)

# Field metadata read by the planner's content key (``plan.content_key``): a setting that only
# distillation reads stays out of a fine-tune's key (one teacher serves sweeps whose KD settings
# differ), and one that changes no result (where a checkpoint lies, the evaluation batch) stays
# out of every key.
DISTILS = {"distils": True}
UNKEYED = {"keyed": False}
# A setting added after trials were stored: keyed only away from its default, so every stored
# trial keeps its key (a changed key retrains it) and a trial that sets it gets a key of its own.
KEYED_OFF_DEFAULT = {"keyed": "off-default"}


class ConfigError(UserError):
    """A configuration value is wrong. ``key``, ``value`` and ``reason`` are kept apart so the
    space's loader can say where in the file the key sits (``train.alpha = 1.5: ...``)."""

    def __init__(self, message: str, key: str = "", value: Any = None, reason: str = "") -> None:
        super().__init__(message)
        self.key, self.value, self.reason = key, value, reason


def _require(ok: bool, key: str, value: Any, reason: str, prefix: str = "") -> None:
    if not ok:
        raise ConfigError(f"{prefix}{key}={value!r}: {reason}", key, value, reason)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_noise_p(value: Any) -> None:
    _require(_number(value) and 0 <= value <= 1, "noise_p", value, "must be a probability in [0, 1]")


def check_warmup_epochs(value: Any, epochs: int) -> None:
    _require(_integer(value) and 0 <= value < epochs, "warmup_epochs", value,
             f"must be in [0, epochs) with epochs={epochs}; raise epochs or lower warmup_epochs")


def check_teachers(method: str, teachers: Sequence[str]) -> None:
    """A distilling trial learns from one teacher at least (its grid block lists teacher sets)."""
    _require(bool(teachers), "teachers", list(teachers),
             f"method {method!r} needs at least one teacher; add a teacher set, e.g. teachers: [[bert]]")


def check_teacher_weights(weights: Sequence[float], teachers: Sequence[str]) -> None:
    _require(len(weights) == len(teachers) and all(w >= 0 for w in weights) and sum(weights) > 0,
             "teacher_weights", list(weights),
             f"one non-negative weight per teacher ({len(teachers)}), not all zero")


def check_cohort(method: str, cohort: Sequence[str]) -> None:
    """A method that trains a cohort trains two students at least; no other method takes one."""
    if methods.get(method).cohort:
        _require(len(cohort) >= 2, "peers", list(cohort[1:]),
                 f"a cohort of one: method {method!r} trains a student with its peers; give it one "
                 "peer at least, e.g. peers: [[minilm@2]]")
    else:
        _require(not cohort, "peers", list(cohort[1:]),
                 f"method {method!r} trains one student; peers are for a cohort method (mutual)")


def distillation_only() -> tuple[str, ...]:
    """Settings only distillation reads (see ``DISTILS``)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("distils"))


def unkeyed() -> tuple[str, ...]:
    """Settings that change no result (see ``UNKEYED``)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("keyed", True))


def unkeyed_at_default(config: Hyper) -> tuple[str, ...]:
    """``KEYED_OFF_DEFAULT`` settings that ``config`` leaves at their default (see above)."""
    return tuple(f.name for f in dataclasses.fields(config)
                 if f.metadata.get("keyed") == KEYED_OFF_DEFAULT["keyed"]
                 and getattr(config, f.name) == f.default)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which GLUE task, where it comes from and how it is split (DESIGN.md: the original work's protocol).

    ``task`` is a name of ``trainers.data.tasks.TASKS`` (SST-2 by default). ``source`` is a folder with
    ``train.tsv``/``validation.tsv`` (or ``dev.tsv``)/``test.tsv`` or ``"hub"`` for
    ``nyu-mll/glue``/``<task>``. Train and quiz are drawn disjointly from GLUE train; validation is
    GLUE dev; test is ``test_size`` further examples held out of GLUE train (``heldout``) or the
    task's labeled test (``labeled``; ``sst2-test``, its older name for SST-2's sentence-level test;
    both need a local ``test.tsv`` with labels, as GLUE hides its test labels).
    """

    source: str
    """A folder of TSVs (`train.tsv`, `validation.tsv` or `dev.tsv`, `test.tsv`) or `hub` (GLUE)."""
    task: str = "sst2"
    """The GLUE task (`trainers/data/tasks.py`)."""
    train_size: int = 30_000
    """Training examples drawn from the task's training file. Integer > 0."""
    quiz_size: int = 100
    """Examples of MetaDistil's quiz, drawn from the training file apart from train. Integer > 0."""
    test_size: int = 2_000
    """Test examples held out of the training file (`test_split: heldout`). Integer > 0."""
    test_split: TestSplit = "heldout"
    """`heldout` (from the training file), `labeled` (the labeled `test.tsv`), `sst2-test` (SST-2's)."""
    split_seed: int = 0
    """Seeds the shuffle that cuts train, quiz and test. Integer."""
    max_length: int = 64
    """Tokens per example (a pair: both sentences); longer inputs are truncated. In [8, 512]."""

    def __post_init__(self) -> None:
        for key in ("train_size", "quiz_size", "test_size"):
            value = getattr(self, key)
            _require(_integer(value) and value > 0, key, value, "must be a positive integer", "data.")
        reason = task_error(self.task)
        _require(reason is None, "task", self.task, reason or "", "data.")
        _require(self.test_split in TEST_SPLITS, "test_split", self.test_split,
                 f"use one of {', '.join(TEST_SPLITS)}", "data.")
        _require(self.test_split != "sst2-test" or self.task == "sst2", "test_split", self.test_split,
                 f"is SST-2's; use test_split: labeled for {self.task}'s labeled test", "data.")
        _require(_integer(self.max_length) and 8 <= self.max_length <= 512, "max_length",
                 self.max_length, "must be an integer in [8, 512]", "data.")
        _require(_integer(self.split_seed), "split_seed", self.split_seed, "must be an integer", "data.")


@dataclass(frozen=True, kw_only=True)
class ModelsConfig:
    """Which build of every named model the trials load: the space's ``models:`` section, one for
    the whole sweep. ``size`` picks the tiny presets or the real checkpoints of the registry names;
    ``vocab_file`` replaces a tiny preset's vocabulary (empty: the packaged one)."""

    size: Size = "tiny"
    """What `bert`, `roberta`, `distilbert`, `tinybert` mean: tiny presets or the real checkpoints."""
    vocab_file: str = ""
    """A vocabulary file for the tiny BERT-family presets (empty: the packaged one)."""

    def __post_init__(self) -> None:
        _require(self.size in SIZES, "size", self.size, f"use one of {', '.join(SIZES)}", "models.")


@dataclass(frozen=True, kw_only=True)
class Hyper:
    """How a trial trains: the space's ``train:`` section, and the part of a trial's config that
    ``teacher_train``, ``per_model`` and a recipe may set. Fields marked ``DISTILS`` are read by
    distillation only.

    - Student: AdamW at ``lr`` with ``weight_decay`` (never on biases and LayerNorm), linear warm-up
      over ``warmup_ratio`` of the steps then linear decay, gradients clipped to ``max_grad_norm``
      (``trainers/engine/update.py``).
    - Distillation loss ``α·T²·soft(s/T, t/T) + (1−α)·CE(s, y) + β·PKD``: ``temperature`` T,
      ``alpha`` α, ``soft_loss``, ``pkd_weight`` β and ``pkd_layers`` (``trainers/methods/objective.py``).
    - MetaDistil (``trainers/methods/metadistil.py``): pilot step size ``pilot_lr``; the teachers' AdamW at
      ``teacher_lr`` with ``teacher_weight_decay``, ``teacher_schedule`` after
      ``teacher_warmup_ratio``, clipped to ``teacher_max_grad_norm`` (0 = no clipping); the quiz in
      batches of ``quiz_batch_size`` (null: the whole quiz every meta step); ``num_meta_batches`` k
      (the official k-step unrolled pilot) or the cheaper ``meta_every`` n (a meta step on every
      n-th batch only). The official code's values are ``search_spaces/recipes/official.yaml``.
    - ``precision``: the arithmetic of training and evaluation, ``fp32``, ``tf32`` (CUDA matmuls in
      TensorFloat-32; on a CPU the same as ``fp32``) or ``bf16`` (autocast), ``trainers/engine/precision.py``.
      It changes results, so a trial that sets it other than ``fp32`` has a key of its own.
    """

    epochs: int = 3
    """Training epochs (a warm start's included). Integer >= 1."""
    batch_size: int = 32
    """Training batch per worker (global batch: `batch_size` × workers). Integer >= 1."""
    lr: float = 5e-5
    """The student's AdamW learning rate. > 0."""
    weight_decay: float = 0.01
    """The student's AdamW weight decay (never on biases and LayerNorm). >= 0."""
    warmup_ratio: float = 0.1
    """Share of the student's steps with a linear warm-up, then linear decay. In [0, 1)."""
    max_grad_norm: float = 1.0
    """The student's gradients are clipped to this norm (0: no clipping). >= 0."""
    temperature: float = field(default=2.0, metadata=DISTILS)
    """T, the temperature of the soft loss. > 0."""
    alpha: float = field(default=0.5, metadata=DISTILS)
    """α, the soft loss's weight; 1 − α weighs cross-entropy on the labels. In [0, 1]."""
    soft_loss: SoftLoss = field(default="kl", metadata=DISTILS)
    """`kl` (KL divergence) or `mse` (MSE of the softened probabilities, the official code's)."""
    pkd_weight: float = field(default=0.0, metadata=DISTILS)
    """β of the PKD term (MSE of normalised [CLS] states of matched layers); 0: no PKD. >= 0."""
    pkd_layers: PkdLayers = field(default="skip", metadata=DISTILS)
    """The teacher layers PKD matches: `skip` (every L_t/L_s-th) or `last`."""
    teacher_lr: float = field(default=1e-5, metadata=DISTILS)
    """MetaDistil: the teachers' AdamW learning rate. > 0."""
    teacher_weight_decay: float = field(default=0.0, metadata=DISTILS)
    """MetaDistil: the teachers' AdamW weight decay. >= 0."""
    teacher_schedule: Schedule = field(default="linear", metadata=DISTILS)
    """MetaDistil: the teachers' rate after warm-up, `linear` decay to 0 or `constant`."""
    teacher_warmup_ratio: float = field(default=0.0, metadata=DISTILS)
    """MetaDistil: share of the teachers' steps with a linear warm-up. In [0, 1)."""
    teacher_max_grad_norm: float = field(default=1.0, metadata=DISTILS)
    """MetaDistil: the teachers' gradient clip (0: no clipping). >= 0."""
    pilot_lr: float = field(default=5e-5, metadata=DISTILS)
    """MetaDistil: the step size of the pilot's plain SGD step. > 0."""
    quiz_batch_size: int | None = field(default=None, metadata=DISTILS)
    """MetaDistil: quiz examples per meta step (null: the whole quiz). Integer >= 1 or null."""
    num_meta_batches: int = field(default=1, metadata=DISTILS)
    """MetaDistil: k, the official k-step unrolled pilot (one worker only). Integer >= 1."""
    meta_every: int = field(default=1, metadata=DISTILS)
    """MetaDistil: a meta step every n-th batch only (not with k > 1). Integer >= 1."""
    teacher_task_loss: bool = field(default=False, metadata=DISTILS)
    """MetaDistil: the teachers also learn the task (cross-entropy) at each meta step."""
    noise_token: str = field(default="noise_word", metadata=DISTILS)
    """The word noise injection puts in place of a word. Not empty."""
    precision: Precision = field(default="fp32", metadata=KEYED_OFF_DEFAULT)
    """`fp32`, `tf32` (CUDA matmuls in TensorFloat-32; fp32 on a CPU) or `bf16` (autocast)."""
    eval_batch_size: int = field(default=256, metadata=UNKEYED)
    """Batch of every evaluation; changes no result. Integer >= 1."""

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "num_meta_batches", "meta_every", "eval_batch_size"):
            value = getattr(self, key)
            _require(_integer(value) and value >= 1, key, value, "must be an integer >= 1")
        for key in ("lr", "teacher_lr", "pilot_lr"):
            value = getattr(self, key)
            _require(_number(value) and value > 0, key, value, "must be > 0")
        for key in ("weight_decay", "teacher_weight_decay", "max_grad_norm", "teacher_max_grad_norm",
                    "pkd_weight"):
            value = getattr(self, key)
            _require(_number(value) and value >= 0, key, value, "must be >= 0")
        for key in ("warmup_ratio", "teacher_warmup_ratio"):
            value = getattr(self, key)
            _require(_number(value) and 0 <= value < 1, key, value, "must be in [0, 1)")
        _require(self.pkd_layers in PKD_LAYERS, "pkd_layers", self.pkd_layers,
                 f"use one of {', '.join(PKD_LAYERS)}")
        _require(self.teacher_schedule in SCHEDULES, "teacher_schedule", self.teacher_schedule,
                 f"use one of {', '.join(SCHEDULES)}")
        _require(self.meta_every == 1 or self.num_meta_batches == 1, "meta_every", self.meta_every,
                 f"cannot be combined with num_meta_batches={self.num_meta_batches}: use "
                 "num_meta_batches (the official unrolled pilot) or meta_every (a cheaper variant)")
        _require(_number(self.temperature) and self.temperature > 0, "temperature", self.temperature,
                 "must be > 0 (try 2.0)")
        _require(_number(self.alpha) and 0 <= self.alpha <= 1, "alpha", self.alpha, "must be in [0, 1]")
        _require(self.soft_loss in SOFT_LOSSES, "soft_loss", self.soft_loss,
                 f"use one of {', '.join(SOFT_LOSSES)}")
        _require(self.quiz_batch_size is None
                 or (_integer(self.quiz_batch_size) and self.quiz_batch_size >= 1),
                 "quiz_batch_size", self.quiz_batch_size, "must be >= 1 or null (whole quiz set)")
        _require(bool(self.noise_token.strip()), "noise_token", self.noise_token,
                 "is empty: give a word, e.g. noise_word")
        _require(self.precision in PRECISIONS, "precision", self.precision,
                 f"use one of {', '.join(PRECISIONS)}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Hyper, ModelsConfig):
    """One trial: which method trains which student from which teachers, with what settings.

    For ``finetune`` the trained model is ``student`` and ``teachers`` is empty (a teacher's own
    fine-tuning is a ``finetune`` trial whose ``student`` is the teacher's name). ``teacher_dirs``
    holds the stage-1 checkpoints of the teachers, in the order of ``teachers``; the planner fills it.
    A space's grid block lists these values; it checks them with the ``check_*`` functions above.
    """

    method: str  # a name of the methods' registry (``trainers/methods/registry.py``)
    student: str
    data: DataConfig
    teachers: tuple[str, ...] = ()
    teacher_dirs: tuple[str, ...] = field(default=(), metadata=UNKEYED)
    teacher_weights: tuple[float, ...] | None = field(default=None, metadata=DISTILS)
    noise_p: float = 0.0
    noise_teachers: bool = field(default=False, metadata=DISTILS)
    warmup_epochs: int = 0
    seed: int = 0
    # A cohort trained together (deep mutual learning, ``trainers/methods/mutual.py``): every member's
    # model, in order, and which of them this trial's ``student`` is. Keyed only when set, so no
    # stored trial's key changes.
    cohort: tuple[str, ...] = field(default=(), metadata=KEYED_OFF_DEFAULT)
    member: int = field(default=0, metadata=KEYED_OFF_DEFAULT)

    def __post_init__(self) -> None:
        Hyper.__post_init__(self)
        ModelsConfig.__post_init__(self)
        _require(self.method in methods.names(), "method", self.method,
                 f"use one of {', '.join(methods.names())}")
        check_noise_p(self.noise_p)
        check_warmup_epochs(self.warmup_epochs, self.epochs)
        _require(_integer(self.seed), "seed", self.seed, "must be an integer")
        _require(not self.noise_teachers or self.noise_p > 0, "noise_teachers", self.noise_teachers,
                 "needs noise_p > 0: there is no noise to share with the teachers")
        if not self.distils:
            _require(not self.teachers, "teachers", list(self.teachers), f"{self.method} takes no teacher")
            if self.noise_p != 0 or self.warmup_epochs != 0:
                raise ConfigError("noise_p and warmup_epochs apply to distillation only; set them "
                                  f"to 0 for {self.method}")
        else:
            check_teachers(self.method, self.teachers)
            if len(self.teacher_dirs) not in (0, len(self.teachers)):
                raise ConfigError("teacher_dirs must name one checkpoint per teacher")
        if self.teacher_weights is not None:
            check_teacher_weights(self.teacher_weights, self.teachers)
        check_cohort(self.method, self.cohort)
        _require(not self.cohort or (_integer(self.member) and 0 <= self.member < len(self.cohort)
                                     and self.cohort[self.member] == self.student),
                 "member", self.member, f"must index the student {self.student!r} in the cohort")

    @property
    def peers(self) -> tuple[str, ...]:
        """The cohort's other members, in order (none outside a cohort)."""
        return self.cohort[:self.member] + self.cohort[self.member + 1:]

    @property
    def distils(self) -> bool:
        return methods.get(self.method).distils

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        raw = dict(raw)
        data = DataConfig(**raw.pop("data"))
        for key in ("teachers", "teacher_dirs", "cohort"):
            raw[key] = tuple(raw.get(key, ()))
        if raw.get("teacher_weights") is not None:
            raw["teacher_weights"] = tuple(raw["teacher_weights"])
        return cls(data=data, **raw)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
