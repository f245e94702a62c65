"""The training loop of one trial, in plain PyTorch (Ray only appears in ``trainers/runtime/worker.py``).

How to train (epochs, batches, evaluation, checkpoints) lives here; how to distil lives in the
methods' steps, which the loop gets from the registry (``trainers/methods/registry.py``) by the config's
method name and never names. Warm start runs the baseline's step (fine-tune) for the first
``warmup_epochs`` epochs, then the method's step, on one optimizer and one schedule.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from trainers.config import ConfigError, TrainConfig
from trainers.data.batches import Batch, TrainViews, length_grouped
from trainers.data.glue import Examples, Splits, load_splits
from trainers.data.metrics import scores
from trainers.data.tokens import tokenizer_fingerprint
from trainers.engine import precision, rng
from trainers.engine.evaluate import logits_of, predict
from trainers.engine.update import StudentUpdate
from trainers.methods import registry as methods
from trainers.methods.registry import Step, StepInputs, Teachers
from trainers.models.build import Built, build_model, count_parameters
from trainers.record import checkpoint
from trainers.record.atomic import staged
from trainers.runtime.distributed import all_reduce_mean, broadcast_parameters, world

# Called after every epoch with (epoch, metrics, checkpoint folder); Ray's adapter reports there.
Reporter = Callable[[int, dict[str, float], Path], None]


# A cohort's k-th member is built with seed ``seed + PEER_SEED_STRIDE·k``: its new head (and a
# preset's weights) start elsewhere than the other members', as the paper's cohort's do.
PEER_SEED_STRIDE = 100


@dataclass
class TrialResult:
    """What a trained model ends with; a cohort's trial also has each peer's, in order."""

    history: list[dict[str, float]]
    final: dict[str, float]
    test: Examples
    test_predictions: np.ndarray
    test_prob_positive: np.ndarray
    student: Built
    peers: list[TrialResult] = field(default_factory=list)


@dataclass
class Trial:
    """Everything a trial trains with, built once from its config."""

    config: TrainConfig
    splits: Splits
    student: Built
    teachers: list[Built]
    device: torch.device
    cache_dir: Path
    peers: list[Built] = field(default_factory=list)  # a cohort's other members, in order

    @classmethod
    def build(cls, config: TrainConfig, *, cache_dir: Path, device: torch.device) -> Trial:
        splits = load_splits(config.data)
        torch.manual_seed(config.seed)  # pretrained models' new heads and every dropout mask
        vocab = config.vocab_file or None  # none set: the presets' own (models.default_vocab)
        texts = splits.train.sentences + (splits.train.second or ())  # a BPE preset learns both sentences
        common = {"train_texts": texts, "cache_dir": cache_dir, "vocab_file": vocab,
                  "num_labels": splits.task.num_labels, "prune_on": splits.train,
                  "max_length": config.data.max_length}  # a pruned model scores its units on train
        student = build_model(config.student, config.size, seed=config.seed, **common)
        sources = config.teacher_dirs or config.teachers  # no checkpoint: a random teacher (tests)
        teachers = [build_model(src, config.size, seed=config.seed + 1 + i, **common)
                    for i, src in enumerate(sources)]
        peers = [build_model(src, config.size, seed=config.seed + PEER_SEED_STRIDE * k, **common)
                 for k, src in enumerate(config.cohort) if k != config.member]
        for peer, src in zip(peers, config.peers):
            if tokenizer_fingerprint(peer.tokenizer) != tokenizer_fingerprint(student.tokenizer):
                raise ConfigError(f"peers: {src!r} tokenizes differently from the student "
                                  f"{config.student!r}; a cohort shares one tokenizer: pick members "
                                  "of one family (e.g. minilm@2 with minilm@4)", "peers", src)
        for built in [student, *teachers, *peers]:
            built.model.to(device)
            broadcast_parameters(built.model)
        return cls(config, splits, student, teachers, device, cache_dir, peers)


def run(trial: Trial, *, report: Reporter, scratch_dir: Path, resume_from: Path | None = None
        ) -> TrialResult:
    """Train ``trial`` to the end, reporting a checkpoint per epoch; resume from one if given.
    Training and every evaluation run in the trial's ``precision``."""
    with precision.applied(trial.config.precision, trial.device):
        return _train(trial, report=report, scratch_dir=scratch_dir, resume_from=resume_from)


def _train(trial: Trial, *, report: Reporter, scratch_dir: Path, resume_from: Path | None
           ) -> TrialResult:
    cfg, device = trial.config, trial.device
    rank, world_size = world()
    student = trial.student.model
    teachers = [t.model for t in trial.teachers]
    method = methods.get(cfg.method)
    student.train()
    for teacher in teachers:
        teacher.eval()  # no dropout: t(φ) is a function of φ alone
        teacher.requires_grad_(method.teachers is Teachers.TRAINABLE)

    views = TrainViews(trial.splits.train, trial.student, trial.teachers, cfg, trial.cache_dir, device)
    shard_size = len(trial.splits.train) // world_size  # equal shards: every rank steps alike
    steps_per_epoch = math.ceil(shard_size / cfg.batch_size)
    update = StudentUpdate(student, lr=cfg.lr, weight_decay=cfg.weight_decay,
                           total_steps=steps_per_epoch * cfg.epochs, warmup_ratio=cfg.warmup_ratio,
                           max_grad_norm=cfg.max_grad_norm)
    finetune, own = steps_of(trial, update, steps_per_epoch)

    trained = own.trained_teachers() if own is not None else []
    peer_updates = own.trained_peers() if own is not None else []
    peers = [p.model for p in trial.peers]
    roles = {"student": student, **{f"teacher{i}": t for i, (t, _) in enumerate(trained)},
             **{f"peer{i}": p for i, p in enumerate(peers, 1)}}
    updates = {"student": update, **{f"teacher{i}": u for i, (_, u) in enumerate(trained)},
               **{f"peer{i}": u for i, u in enumerate(peer_updates, 1)}}
    optimizers = {role: u.optimizer for role, u in updates.items()}
    schedulers = {role: u.scheduler for role, u in updates.items()}
    history: list[dict[str, float]] = []
    peer_history: list[list[dict[str, float]]] = [[] for _ in peers]
    start_epoch = 1
    if resume_from is not None:
        state, saved_rng = checkpoint.load(resume_from, models=roles, optimizers=optimizers,
                                           schedulers=schedulers)
        rng.set_state(saved_rng)
        history, start_epoch = state["history"], state["epoch"] + 1
        peer_history = state.get("peer_history", peer_history)
        if own is not None:
            own.load_state(state)

    student_tok = trial.student.tokenizer
    validation = trial.student.encode(trial.splits.validation, cfg.data.max_length, trial.cache_dir)
    task_metrics = trial.splits.task.metrics

    def validate(model: torch.nn.Module) -> dict[str, float]:
        predictions, _ = predict(model, validation, pad_id=student_tok.pad_token_id,
                                 batch_size=cfg.eval_batch_size, device=device)
        model.train()
        return scores(task_metrics, predictions, trial.splits.validation.labels, "val")

    for epoch in range(start_epoch, cfg.epochs + 1):
        distilling = own is not None and epoch > cfg.warmup_epochs
        step = own if distilling else finetune
        shuffle = np.random.default_rng([cfg.seed, epoch])
        order = shuffle.permutation(len(trial.splits.train))[:shard_size * world_size]
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        started = time.perf_counter()
        # The global batches of one worker with batch_size × world_size, each dealt out across the
        # ranks: N workers take the steps one worker with the global batch takes. Every global batch
        # holds a multiple of world_size rows (so do the order and each full batch), so the ranks'
        # parts are equal and the mean of their means is the global batch's mean.
        global_batches = length_grouped(order, views.lengths, cfg.batch_size * world_size, shuffle)
        batches = (views.batch(rows[rank::world_size], epoch, noisy=distilling,
                               with_teachers=step.needs_teachers) for rows in global_batches)
        for reported in _epoch(step, batches):
            for key, value in reported.items():
                sums[key] += value
                counts[key] += 1
        elapsed = time.perf_counter() - started
        sums = _across_workers(sums, device)
        metrics = {key: sums[key] / counts[key] for key in sums}
        timing = {"epoch_time_s": elapsed, "samples_per_s": len(order) / elapsed}
        metrics.update(validate(student), **timing)
        history.append(metrics)
        for i, (peer, rows) in enumerate(zip(peers, peer_history), 1):  # each peer's own record
            rows.append({"train_loss": metrics[f"peer{i}_train_loss"], **validate(peer), **timing})
        state = {"epoch": epoch, "history": history, **(own.state() if own is not None else {}),
                 **({"peer_history": peer_history} if peers else {})}
        folder = checkpoint.save(scratch_dir / f"epoch-{epoch:03d}", models=roles,
                                 optimizers=optimizers, schedulers=schedulers,
                                 rng=rng.get_state(), state=state)
        report(epoch, metrics, folder)

    test = trial.student.encode(trial.splits.test, cfg.data.max_length, trial.cache_dir)
    teacher_params = max((count_parameters(t) for t in teachers), default=0)

    def tested(built: Built, rows: list[dict[str, float]]) -> TrialResult:
        predictions, prob_positive = predict(built.model, test, pad_id=student_tok.pad_token_id,
                                             batch_size=cfg.eval_batch_size, device=device)
        final = {**scores(task_metrics, predictions, trial.splits.test.labels, "test"),
                 "student_params": count_parameters(built.model), "teacher_params": teacher_params}
        return TrialResult(rows, final, trial.splits.test, predictions, prob_positive, built)

    result = tested(trial.student, history)
    result.peers = [tested(peer, rows) for peer, rows in zip(trial.peers, peer_history)]
    return result


def _epoch(step: Step, batches: Iterable[Batch]) -> Iterator[dict[str, float]]:
    """What each step of an epoch reports, then what the step held to the epoch's end (e.g. the
    last batches of MetaDistil's ``num_meta_batches`` buffer), trained."""
    for batch in batches:
        yield step(batch)
    yield step.finish_epoch()


def steps_of(trial: Trial, update: StudentUpdate, steps_per_epoch: int) -> tuple[Step, Step | None]:
    """The baseline's step (the warm start's, or the whole trial's for a fine-tune) and the trial's
    method's step (``None`` for the baseline), from the registry."""
    inputs = StepInputs(trial, update, steps_per_epoch, lambda i: _train_logits(trial, i))
    method, baseline = methods.get(trial.config.method), methods.baseline()
    return baseline.build(inputs), None if method is baseline else method.build(inputs)


def _across_workers(sums: dict[str, float], device: torch.device) -> dict[str, float]:
    """The ranks' sums of their per-step metrics, averaged: a worker's step loss is the mean over
    its part of the global batch, so the average over ranks is the global batch's loss (every rank
    reports the same metrics, the same number of times)."""
    if world()[1] == 1:
        return sums
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=device)
    all_reduce_mean([values])
    return dict(zip(keys, values.tolist()))


def teacher_logits_key(weights: Path, tokenizer: PreTrainedTokenizerBase, split: str, max_length: int,
                       precision_name: str) -> str:
    """The teacher-logit cache's key: the weights file (path, size, mtime: a retrained teacher is
    new), the tokenizer's fingerprint (a folder's tokenizer can change under the same weights),
    the training split, the length and the precision. Only the path is free text, and it comes
    first, so joining with ``|`` is unambiguous."""
    stat = weights.stat()
    inputs = (f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{tokenizer_fingerprint(tokenizer)}|"
              f"{split}|{max_length}|{precision_name}")
    return hashlib.sha256(inputs.encode()).hexdigest()[:20]


def _train_logits(trial: Trial, index: int) -> torch.Tensor:
    """A frozen teacher's logits on the clean training split, cached on disk for a checkpointed
    teacher (keyed by its weights file, tokenizer, split, length and precision), in memory otherwise."""
    cfg, teacher = trial.config, trial.teachers[index]
    encoded = teacher.encode(trial.splits.train, cfg.data.max_length, trial.cache_dir)

    def compute() -> torch.Tensor:
        return logits_of(teacher.model, encoded, pad_id=teacher.tokenizer.pad_token_id,
                         batch_size=cfg.eval_batch_size, device=trial.device)

    if not cfg.teacher_dirs:
        return compute()
    key = teacher_logits_key(Path(cfg.teacher_dirs[index]) / "model.safetensors", teacher.tokenizer,
                             trial.splits.fingerprint, cfg.data.max_length, cfg.precision)
    path = trial.cache_dir / f"teacher-logits-{key}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path)).to(trial.device)
    logits = compute()
    with staged(path) as staging:
        np.save(staging, logits.cpu().numpy())
    return logits
