"""Typed trial configuration, validated once in ``__post_init__``; the rest of the code trusts it.

A bad value raises :class:`ConfigError` whose message names the key, the value and the fix, in one
line, so every entry point can print it and exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METHODS = ("finetune", "kd", "metadistil")
SIZES = ("tiny", "real")
SOFT_LOSSES = ("kl", "mse")
TEST_SPLITS = ("heldout", "sst2-test")


class ConfigError(ValueError):
    """A user's configuration value is wrong; the message is one line naming key, value and fix."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """Where SST-2 comes from and how it is split (DESIGN.md: the original work's protocol).

    ``source`` is a folder with ``train.tsv``/``validation.tsv``/``test.tsv`` or ``"hub"`` for
    ``nyu-mll/glue``/``sst2``. Train and quiz are drawn disjointly from GLUE train; validation is
    GLUE dev; test is ``test_size`` further examples held out of GLUE train (``heldout``) or the
    labeled sentence-level SST-2 test (``sst2-test``, needs a local ``test.tsv`` with labels).
    """

    source: str
    train_size: int = 30_000
    quiz_size: int = 100
    test_size: int = 2_000
    test_split: str = "heldout"
    split_seed: int = 0
    max_length: int = 64

    def __post_init__(self) -> None:
        for key in ("train_size", "quiz_size", "test_size"):
            value = getattr(self, key)
            _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                     f"data.{key}={value!r}: must be a positive integer")
        _require(self.test_split in TEST_SPLITS,
                 f"data.test_split={self.test_split!r}: use one of {', '.join(TEST_SPLITS)}")
        _require(isinstance(self.max_length, int) and 8 <= self.max_length <= 512,
                 f"data.max_length={self.max_length!r}: must be an integer in [8, 512]")
        _require(isinstance(self.split_seed, int) and not isinstance(self.split_seed, bool),
                 f"data.split_seed={self.split_seed!r}: must be an integer")


@dataclass(frozen=True)
class TrainConfig:
    """One trial: which method trains which student from which teachers, with what settings.

    For ``finetune`` the trained model is ``student`` and ``teachers`` is empty (a teacher's own
    fine-tuning is a ``finetune`` trial whose ``student`` is the teacher's name). ``teacher_dirs``
    holds the stage-1 checkpoints of the teachers, in the order of ``teachers``; the planner fills it.
    Defaults follow the official MetaDistil code: student lr 5e-5, teacher lr 1e-5, pilot step 5e-5.
    """

    method: str
    student: str
    data: DataConfig
    teachers: tuple[str, ...] = ()
    teacher_dirs: tuple[str, ...] = ()
    teacher_weights: tuple[float, ...] | None = None
    size: str = "tiny"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    temperature: float = 2.0
    alpha: float = 0.5
    soft_loss: str = "kl"
    teacher_lr: float = 1e-5
    pilot_lr: float = 5e-5
    quiz_batch_size: int | None = None
    meta_interval: int = 1
    teacher_task_loss: bool = False
    noise_p: float = 0.0
    noise_token: str = "noise_word"
    noise_teachers: bool = False
    warmup_epochs: int = 0
    seed: int = 0
    eval_batch_size: int = 256
    vocab_file: str = ""

    def __post_init__(self) -> None:
        _require(self.method in METHODS, f"method={self.method!r}: use one of {', '.join(METHODS)}")
        _require(self.size in SIZES, f"size={self.size!r}: use one of {', '.join(SIZES)}")
        _require(isinstance(self.epochs, int) and self.epochs >= 1,
                 f"epochs={self.epochs!r}: must be an integer >= 1")
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1,
                 f"batch_size={self.batch_size!r}: must be an integer >= 1")
        for key in ("lr", "teacher_lr", "pilot_lr"):
            value = getattr(self, key)
            _require(isinstance(value, (int, float)) and value > 0, f"{key}={value!r}: must be > 0")
        _require(self.temperature > 0, f"temperature={self.temperature!r}: must be > 0 (try 2.0)")
        _require(0 <= self.alpha <= 1, f"alpha={self.alpha!r}: must be in [0, 1]")
        _require(self.soft_loss in SOFT_LOSSES,
                 f"soft_loss={self.soft_loss!r}: use one of {', '.join(SOFT_LOSSES)}")
        _require(isinstance(self.noise_p, (int, float)) and 0 <= self.noise_p <= 1,
                 f"noise_p={self.noise_p!r}: must be a probability in [0, 1]")
        _require(bool(self.noise_token.strip()), "noise_token is empty: give a word, e.g. noise_word")
        _require(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs < self.epochs,
                 f"warmup_epochs={self.warmup_epochs!r}: must be in [0, epochs) with epochs="
                 f"{self.epochs}; raise epochs or lower warmup_epochs")
        _require(isinstance(self.seed, int) and not isinstance(self.seed, bool),
                 f"seed={self.seed!r}: must be an integer")
        _require(isinstance(self.meta_interval, int) and self.meta_interval >= 1,
                 f"meta_interval={self.meta_interval!r}: must be an integer >= 1")
        _require(self.quiz_batch_size is None or self.quiz_batch_size >= 1,
                 f"quiz_batch_size={self.quiz_batch_size!r}: must be >= 1 or null (whole quiz set)")
        if self.method == "finetune":
            _require(not self.teachers, f"teachers={list(self.teachers)}: fine-tune takes no teacher")
            _require(self.noise_p == 0 and self.warmup_epochs == 0,
                     "noise_p and warmup_epochs apply to distillation only; set them to 0 for finetune")
        else:
            _require(len(self.teachers) >= 1,
                     f"method={self.method!r} needs at least one teacher; add teachers: [bert]")
            _require(len(self.teacher_dirs) in (0, len(self.teachers)),
                     "teacher_dirs must name one checkpoint per teacher")
        if self.teacher_weights is not None:
            _require(len(self.teacher_weights) == len(self.teachers)
                     and all(w >= 0 for w in self.teacher_weights) and sum(self.teacher_weights) > 0,
                     f"teacher_weights={list(self.teacher_weights)}: one non-negative weight per "
                     f"teacher ({len(self.teachers)}), not all zero")

    @property
    def distils(self) -> bool:
        return self.method != "finetune"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        raw = dict(raw)
        data = DataConfig(**raw.pop("data"))
        for key in ("teachers", "teacher_dirs"):
            raw[key] = tuple(raw.get(key, ()))
        if raw.get("teacher_weights") is not None:
            raw["teacher_weights"] = tuple(raw["teacher_weights"])
        return cls(data=data, **raw)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
