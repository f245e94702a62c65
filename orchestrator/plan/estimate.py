"""The dry run's time estimate: what each trial costs on this kind of machine, and how long a stage
runs when Tune starts its trials in order on the free slots.

Cost model, fitted on the 2-core CI machine with two trials side by side, one thread each, as a
sweep runs them (``benchmarks/bench_sweep.py`` on the default space: the fine-tunes of MiniLM and
of its 2-layer cut give A and B; the MetaDistil trials check the rest to within 10 %). One training
example through model ``m`` (forward, backward, optimizer step) costs

    c(m) = A + B · P(m)        P(m): parameters outside the embeddings (a lookup is nearly free)

so a tiny preset costs about 3 ms and all-MiniLM-L6-v2 about 19 ms. A fine-tune epoch (and a warm
start's) costs ``c(S)`` per training example, student S; a method's own epochs cost what its cost
model says (``Method.cost`` in its module: e.g. KD ``c(S)`` plus the teachers' forward over the
split once, MetaDistil's meta step ``1.5·c(S) + (2/3)(q/b)·c(S) + (4/3)·Σ c(T_i)``), from the
costs of the student and of the teachers T_i;
plus a forward pass (c/5: evaluation batches of 256) over validation every epoch and over test at
the end, and a fixed cost a trial (Ray Train's start-up and tear-down, building and saving the
models). Models from the hub are not estimated: they run on clusters this model was not fitted on.
The model was fitted on SST-2's phrases; another task's example costs ``c(m)`` times its length
relative to SST-2's (``trainers.data.tasks.Task.length_ratio``: an MRPC pair is 4.0 phrases), and its
validation is its own GLUE dev.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.config import TrainConfig
from trainers.data.tasks import TASKS
from trainers.methods import registry as methods
from trainers.methods.registry import CostInputs
from trainers.models.refs import PRESETS, ModelRef

if TYPE_CHECKING:
    from orchestrator.plan.planner import PlannedTrial

A_S = 2.0e-3         # s per example, whatever the model: tokens to tensors, the loss, the step
B_S = 1.6e-9         # s per example and non-embedding parameter (fwd + bwd + AdamW, one thread)
FORWARD_SHARE = 0.2  # a forward pass at evaluation's batch of 256 costs a fifth of a training example
TRIAL_OVERHEAD_S = 22.0   # Ray's 16 s a trial beside a training one, and ~6 s to build and save
SWEEP_OVERHEAD_S = 36.0   # Ray's start and the report


@cache
def example_cost(source: str, size: str) -> float | None:
    """``c(m)`` in seconds, or ``None`` for a hub model (not estimated)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from trainers.models.build import architecture

    ref = ModelRef.parse(source)
    if not (Path(ref.base).is_dir() or (ref.base in PRESETS and size == "tiny")):
        return None  # a hub model: its sweep runs on a cluster this cost model knows nothing of
    config = architecture(source, size)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    body = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    return A_S + B_S * body


def trial_seconds(config: TrainConfig) -> float | None:
    """One trial's wall time on this kind of machine, or ``None`` if a model's size is unknown. A
    cohort's members after the first cost nothing: the first's trial trains them all."""
    if config.member > 0:
        return 0.0
    student = example_cost(config.student, config.size)
    teachers = [example_cost(t, config.size) for t in config.teachers]  # as their checkpoints
    peers = [example_cost(p, config.size) for p in config.peers]
    if student is None or None in teachers or None in peers:
        return None
    task = TASKS[config.data.task]
    ratio = task.length_ratio
    student, teachers, peers = student * ratio, [t * ratio for t in teachers], [p * ratio for p in peers]
    n = config.data.train_size
    method = methods.get(config.method)
    own_epochs = config.epochs - config.warmup_epochs  # a fine-tune's own epochs cost c(S) too
    per_example, once = method.cost(CostInputs(config, student, tuple(teachers), FORWARD_SHARE,
                                               tuple(peers)))
    training = n * ((config.epochs - own_epochs) * student + own_epochs * per_example) + once
    evaluated = student + sum(peers)  # every member is validated each epoch and tested
    evaluation = (config.epochs * task.dev_size + config.data.test_size) * evaluated * FORWARD_SHARE
    return training + evaluation + TRIAL_OVERHEAD_S


def makespan(seconds: list[float], slots: int) -> float:
    """How long one stage runs when Tune starts its trials in order, each on the first free slot
    (the next stage waits for all of them)."""
    free = [0.0] * slots
    for duration in seconds:
        free[free.index(min(free))] += duration
    return max(free)


def critical_path(trials: list[PlannedTrial], seconds: Mapping[str, float | None]) -> float:
    """The longest chain of trials through the plan's graph, each trial's time after its slowest
    teacher's chain (``seconds`` by key; a trial absent from it is done already and costs 0):
    the least time any schedule needs, however many slots it has."""
    done: dict[str, float] = {}
    for trial in sorted(trials, key=lambda t: t.stage):  # teachers sit in earlier stages
        before = max((done.get(k, 0.0) for k in trial.teacher_keys), default=0.0)
        done[trial.key] = before + (seconds.get(trial.key) or 0.0)
    return max(done.values(), default=0.0)


def unlayered_seconds(trials: list[PlannedTrial], seconds: Mapping[str, float | None], slots: int) -> float:
    """How long the trials would run if each started as soon as its teachers had finished and a
    slot was free (in plan order), with no barrier between stages: the layers' cost is the layered
    estimate minus this. A trial absent from ``seconds`` is done already and costs 0."""
    free = [0.0] * slots
    done: dict[str, float] = {}
    for trial in sorted(trials, key=lambda t: t.stage):  # teachers sit in earlier stages
        ready = max((done.get(k, 0.0) for k in trial.teacher_keys), default=0.0)
        cost = seconds.get(trial.key) or 0.0
        if not cost:
            done[trial.key] = ready
            continue
        slot = free.index(min(free))
        done[trial.key] = free[slot] = max(free[slot], ready) + cost
    return max(done.values(), default=0.0)


def sweep_seconds(stages: list[list[float]], slots: int) -> float:
    """The whole sweep: its fixed start-up (Ray, MLflow) and each stage's makespan, in turn."""
    return SWEEP_OVERHEAD_S + sum(makespan(seconds, slots) for seconds in stages)
