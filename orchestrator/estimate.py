"""The dry run's time estimate: what each trial costs on this kind of machine, and how long a stage
runs when Tune starts its trials in order on the free slots.

Cost model, fitted on the 2-core CI machine with two trials side by side, one thread each, as a
sweep runs them (``benchmarks/bench_sweep.py`` on the default space: the fine-tunes of MiniLM and
of its 2-layer cut give A and B; the MetaDistil trials check the rest to within 10 %). One training
example through model ``m`` (forward, backward, optimizer step) costs

    c(m) = A + B · P(m)        P(m): parameters outside the embeddings (a lookup is nearly free)

so a tiny preset costs about 3 ms and all-MiniLM-L6-v2 about 19 ms. A trial's epoch then costs,
per training example, with student S, teachers T_i, quiz q and batch b:

    fine-tune (and warm-start epochs)   c(S)
    KD                                  c(S)             (+ Σ c(T_i)/5 once: the cached logits)
    KD, live teachers (PKD, shared noise) c(S) + Σ c(T_i)/3
    MetaDistil, a meta step             1.5·c(S) + (2/3)(q/b)·c(S) + (4/3)·Σ c(T_i)
                                        (the real step, the pilot gradient and the JVP; the quiz's
                                        forward and backward at θ′; each teacher's forward, backward
                                        and second forward)
    MetaDistil, between meta steps      c(S) + Σ c(T_i)/3   (a live-teacher KD step; ``meta_every``)
    MetaDistil, k-step unroll           per batch 3·c(S) + (4/3)(q/(b·k))·c(S) + (5/3)·Σ c(T_i)
                                        (a pilot step through create_graph and a real step; the
                                        quiz's forward and double backward once per k batches)

plus a forward pass (c/5: evaluation batches of 256) over validation every epoch and over test at
the end, and a fixed cost a trial (Ray Train's start-up and tear-down, building and saving the
models). Models from the hub are not estimated: they run on clusters this model was not fitted on.
The model was fitted on SST-2's phrases; another task's example costs ``c(m)`` times its length
relative to SST-2's (``trainers.tasks.Task.length_ratio``: an MRPC pair is 4.0 phrases), and its
validation is its own GLUE dev.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from trainers.config import TrainConfig
from trainers.model_refs import PRESETS, ModelRef
from trainers.tasks import TASKS

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

    from trainers.models import architecture

    ref = ModelRef.parse(source)
    if not (Path(ref.base).is_dir() or (ref.base in PRESETS and size == "tiny")):
        return None  # a hub model: its sweep runs on a cluster this cost model knows nothing of
    config = architecture(source, size)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    body = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    return A_S + B_S * body


def trial_seconds(config: TrainConfig) -> float | None:
    """One trial's wall time on this kind of machine, or ``None`` if a model's size is unknown."""
    student = example_cost(config.student, config.size)
    teachers = [example_cost(t, config.size) for t in config.teachers]  # as their checkpoints
    if student is None or None in teachers:
        return None
    task = TASKS[config.data.task]
    student, teachers = student * task.length_ratio, [t * task.length_ratio for t in teachers]
    n = config.data.train_size
    distil_epochs = config.epochs - config.warmup_epochs if config.distils else 0
    live = student + sum(teachers) / 3
    quiz = config.quiz_batch_size or config.data.quiz_size
    if config.method == "kd" and (config.pkd_weight > 0 or config.noise_teachers):
        per_example, once = live, 0.0
    elif config.method == "kd":
        per_example = student
        once = n * sum(teachers) * FORWARD_SHARE
    elif config.method == "metadistil" and config.num_meta_batches > 1:
        k = config.num_meta_batches
        per_example = 3 * student + 4 / 3 * quiz / (config.batch_size * k) * student + 5 / 3 * sum(teachers)
        once = 0.0
    elif config.method == "metadistil":
        meta = 1.5 * student + 2 / 3 * quiz / config.batch_size * student + 4 / 3 * sum(teachers)
        per_example = (meta + (config.meta_every - 1) * live) / config.meta_every
        once = 0.0
    else:
        per_example, once = student, 0.0
    training = n * ((config.epochs - distil_epochs) * student + distil_epochs * per_example) + once
    evaluation = (config.epochs * task.dev_size + config.data.test_size) * student * FORWARD_SHARE
    return training + evaluation + TRIAL_OVERHEAD_S


def makespan(seconds: list[float], slots: int) -> float:
    """How long one stage runs when Tune starts its trials in order, each on the first free slot
    (the next stage waits for all of them)."""
    free = [0.0] * slots
    for duration in seconds:
        free[free.index(min(free))] += duration
    return max(free)


def sweep_seconds(stages: list[list[float]], slots: int) -> float:
    """The whole sweep: its fixed start-up (Ray, MLflow) and each stage's makespan, in turn."""
    return SWEEP_OVERHEAD_S + sum(makespan(seconds, slots) for seconds in stages)
