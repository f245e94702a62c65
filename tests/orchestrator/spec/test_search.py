"""Random search in the planner: the same seed plans the same trials, draws stay in bounds and in
type, samples are stable under unrelated changes, teachers stay fixed where teacher_train pins
them, and a space without a search plans exactly as before; the search's metric is one its task
logs, the task's main one by default."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import pytest
import yaml

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import build_plan
from orchestrator.spec.search import DISTRIBUTIONS, Distribution, draw, metrics_of
from orchestrator.spec.space import SpecError, parse_spec
from tests.conftest import ROOT
from trainers.data.tasks import TASKS

STORE = Path("/nonexistent-store")
GRID = [{"methods": ["finetune"], "students": ["distilbert"]},
        {"methods": ["kd", "metadistil"], "teachers": [["bert"]], "students": ["distilbert"]}]
TRAIN = {"lr": {"loguniform": [1.0e-5, 1.0e-3]}, "alpha": {"uniform": [0.2, 0.8]},
         "soft_loss": {"choice": ["kl", "mse"]}, "epochs": {"randint": [2, 4]}}


def _spec(train=None, search=None, grid=None, seeds=(0,), **extra):
    search = {"algorithm": "random", "num_samples": 4, **(search or {})}
    return parse_spec({"name": "t", "seeds": list(seeds), "grid": grid or GRID,
                       "train": TRAIN if train is None else train, "search": search, **extra}, "t.yaml")


def _plan(spec):
    return build_plan(spec, data_fingerprint="f0", storage=STORE,
                      models=resolve_models(spec, ROOT / "t.yaml", strict=False))


def _trials(plan):
    return [(t.key, t.name, t.sample, t.searched) for t in plan.trials]


def test_same_seed_same_trials_other_seed_other_samples():
    first, again = _plan(_spec()), _plan(_spec())
    assert _trials(first) == _trials(again) and first.samples == again.samples
    other = _plan(_spec(search={"seed": 1}))
    assert other.samples != first.samples
    assert not {t.key for t in other.stages[2]} & {t.key for t in first.stages[2]}


def test_each_sample_times_every_seed_and_combination():
    plan = _plan(_spec(seeds=(0, 1)))
    assert len(plan.samples) == 4
    assert len(plan.stages[2]) == 4 * 2 * 2  # samples × seeds × (kd, metadistil)
    for trial in plan.stages[2]:
        assert f"__s{trial.sample}__seed{trial.config.seed}" in trial.name
        drawn = plan.samples[trial.sample]
        assert {k: getattr(trial.config, k) for k in TRAIN} == {k: drawn[f"train.{k}"] for k in TRAIN}
        assert trial.tags["sample"] == str(trial.sample)
        assert json.loads(trial.tags["searched"]) == dict(trial.searched)  # full precision


def test_draws_stay_in_bounds_and_type_over_many_seeds():
    dists = {"lr": Distribution("loguniform", (1e-5, 1e-3)), "alpha": Distribution("uniform", (0.2, 0.8)),
             "epochs": Distribution("randint", (1, 3)), "soft_loss": Distribution("choice", ("kl", "mse")),
             "quiz_batch_size": Distribution("choice", (None, 8))}
    seen: dict[str, set] = {key: set() for key in dists}
    for seed in range(300):
        for key, dist in dists.items():
            value = draw(dist, seed, seed % 7, f"train.{key}")
            seen[key].add(value if dist.kind in ("choice", "randint") else round(value, 1))
            if dist.kind in ("uniform", "loguniform"):
                assert isinstance(value, float) and dist.args[0] <= value <= dist.args[1]
            elif dist.kind == "randint":
                assert isinstance(value, int) and not isinstance(value, bool)
            assert dist.kind != "choice" or value in dist.args
    assert seen["epochs"] == {1, 2, 3}  # randint includes both ends
    assert seen["soft_loss"] == {"kl", "mse"} and seen["quiz_batch_size"] == {None, 8}
    logs = [math.log10(draw(dists["lr"], s, 0, "train.lr")) for s in range(300)]
    assert sum(v < -4 for v in logs) > 100  # log-uniform: half the draws below the geometric middle


def test_a_sample_keeps_its_values_when_unrelated_parts_change():
    base = _plan(_spec()).samples
    more = _plan(_spec(search={"num_samples": 6})).samples
    assert {k: more[k] for k in base} == base
    added = _plan(_spec(train={**TRAIN, "temperature": {"uniform": [1.0, 4.0]}})).samples
    assert all({p: v for p, v in added[k].items() if p != "train.temperature"} == base[k] for k in base)
    grid = [*GRID, {"methods": ["kd"], "teachers": [["roberta"]], "students": ["tinybert"]}]
    assert _plan(_spec(grid=grid)).samples == base


def test_teachers_pinned_by_teacher_train_are_shared_by_every_sample():
    plan = _plan(_spec(teacher_train={"lr": 1.0e-4, "epochs": 3}))
    teachers = [t for t in plan.stages[1] if t.student == "bert"]
    assert [t.name for t in teachers] == ["bert__finetune__seed0"] and teachers[0].sample is None
    assert {t.teacher_keys for t in plan.stages[2]} == {(teachers[0].key,)}


def test_distillation_draws_leave_fine_tunes_alone():
    plan = _plan(_spec(train={"alpha": {"uniform": [0.2, 0.8]}, "teacher_lr": {"loguniform": [1e-6, 1e-4]}}))
    assert [t.name for t in plan.stages[1]] == ["distilbert__finetune__seed0", "bert__finetune__seed0"]
    assert len(plan.stages[2]) == 4 * 2 and all(t.sample is not None for t in plan.stages[2])


def test_teacher_draws_are_their_own_and_reach_the_students_tags():
    plan = _plan(_spec(train={"alpha": {"uniform": [0.2, 0.8]}},
                       teacher_train={"lr": {"loguniform": [1e-5, 1e-3]}}))
    teachers = {t.sample: t for t in plan.stages[1] if t.student == "bert"}
    assert sorted(teachers) == [0, 1, 2, 3]
    for trial in plan.stages[2]:
        teacher = teachers[trial.sample]
        assert trial.teacher_keys == (teacher.key,)
        assert json.loads(trial.tags["searched"]) == {"alpha": trial.config.alpha,
                                                      "bert.lr": teacher.config.lr}
    students = _plan(_spec(train={"lr": {"loguniform": [1e-5, 1e-3]}},
                           teacher_train={"lr": {"loguniform": [1e-5, 1e-3]}}))
    student_lrs = {t.config.lr for t in students.stages[2]}
    assert not student_lrs & {t.config.lr for t in students.stages[1] if t.student == "bert"}


def test_per_model_and_block_recipe_win_over_a_train_distribution():
    grid = [{"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert", "tinybert"],
             "recipe": ["default", "official"]}]
    spec = _spec(train={"lr": {"loguniform": [1e-5, 1e-3]}}, grid=grid, teacher_train={"lr": 1.0e-4},
                 per_model={"tinybert": {"lr": 1.0e-3}}, data={"max_length": 128})
    for trial in _plan(spec).stages[2]:
        drawn = trial.student == "distilbert" and trial.recipe == "default"
        assert (trial.sample is not None) == drawn == ("lr" in dict(trial.searched))
        if not drawn:
            assert trial.config.lr == (1e-3 if trial.student == "tinybert" else 5e-5)


def test_a_space_without_a_search_plans_exactly_as_before():
    """The keys, names and tags of paper.yaml (hub models: the same on every machine) as the
    planner gave them before search existed: a change here retrains every stored trial."""
    space = ROOT / "search_spaces" / "paper.yaml"
    spec = parse_spec(yaml.safe_load(space.read_text()), str(space))
    plan = _plan(spec)
    blob = "\n".join(f"{t.key} {t.name} {sorted(t.tags.items())}" for t in plan.trials)
    assert len(plan.trials) == 66 and hashlib.sha256(blob.encode()).hexdigest()[:16] == "7c0c399f11b79c60"
    assert plan.samples == {} and spec.distributions == {}


@pytest.mark.parametrize("train, expected", [
    ({"lr": {"normal": [0, 1]}}, "train.lr = {'normal': [0, 1]}: not a distribution; write one of "
     + ", ".join(DISTRIBUTIONS)),
    ({"lr": {"uniform": [1e-3, 1e-5]}}, "low 0.001 must be below high 1e-05"),
    ({"weight_decay": {"loguniform": [0.0, 0.1]}}, "loguniform draws the logarithm, so low 0.0 must be > 0"),
    ({"epochs": {"uniform": [1, 3]}}, "uniform draws real numbers but epochs takes integers; use randint"),
    ({"soft_loss": {"choice": []}}, "choice takes a non-empty list"),
    ({"alpha": {"choice": [0.5, 0.5]}}, "a value is listed twice"),
    ({"noise_token": {"choice": ["a", "b"]}}, "noise_token is free text"),
    ({"eval_batch_size": {"randint": [64, 256]}}, "eval_batch_size changes no result"),
    ({"teacher_task_loss": {"uniform": [0, 1]}}, "use choice"),
    ({"lr": {"uniform": [0.1]}}, "uniform takes [low, high]"),
])
def test_bad_distribution_is_refused_in_one_line(train, expected):
    with pytest.raises(SpecError) as error:
        _spec(train=train)
    message = str(error.value)
    assert message.startswith("t.yaml: ") and expected in message and "\n" not in message


def test_plain_values_in_a_random_search_are_the_same_dataclass():
    spec = _spec(train={**TRAIN, "batch_size": 8})
    assert spec.train.batch_size == 8 and dataclasses.is_dataclass(spec.train)
    assert set(spec.distributions) == {f"train.{k}" for k in TRAIN}


def test_asha_settings_and_their_defaults():
    search = _spec(search={"scheduler": "asha", "max_concurrent": 1}).search
    assert (search.scheduler, search.grace_period, search.reduction_factor) == ("asha", 1, 2.0)
    assert search.max_concurrent == 1 and _spec().search.scheduler == "none"
    tuned = _spec(search={"scheduler": "asha", "grace_period": 2, "reduction_factor": 3},
                  train={"lr": {"loguniform": [1e-5, 1e-3]}, "epochs": 4}).search
    assert (tuned.grace_period, tuned.reduction_factor) == (2, 3.0)


@pytest.mark.parametrize("search, train, expected", [
    ({"scheduler": "hyperband"}, None, "search.scheduler = 'hyperband': Input should be 'none' or 'asha'"),
    ({"scheduler": "asha", "grace_period": 0}, None, "search.grace_period = 0: Input should be greater than"),
    ({"scheduler": "asha", "reduction_factor": 1.5}, None, "search.reduction_factor = 1.5: Input should be"),
    ({"max_concurrent": 0}, None, "search.max_concurrent = 0: Input should be greater than or equal to 1"),
    ({"grace_period": 2}, None, "grace_period is ASHA's setting, which scheduler none does not use"),
    ({"scheduler": "asha", "num_samples": 1}, None, "scheduler asha stops the samples that trail"),
    ({"scheduler": "asha", "grace_period": 2}, {"lr": {"loguniform": [1e-5, 1e-3]}, "epochs": 2},
     "search.grace_period 2 >= train.epochs 2: ASHA could stop no trial before its end"),
    ({"scheduler": "asha", "grace_period": 2}, {"epochs": {"randint": [2, 4]}},
     "search.grace_period 2 >= train.epochs 2 (its lowest draw)"),
])
def test_bad_asha_settings_are_refused_in_one_line(search, train, expected):
    with pytest.raises(SpecError) as error:
        _spec(search=search, train=train)
    assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)


@pytest.mark.parametrize("task, default, good", [
    ("sst2", "val_accuracy", ["val_accuracy", "train_loss"]),
    ("mrpc", "val_f1", ["val_f1", "val_accuracy", "train_loss"]),
    ("cola", "val_matthews", ["val_matthews", "val_accuracy", "train_loss"]),
])
def test_the_search_metric_is_one_the_task_logs_its_main_one_by_default(task, default, good):
    data = {"task": task}
    assert _spec(data=data).search.metric == default
    grid_only = parse_spec({"name": "t", "seeds": [0], "grid": GRID, "data": data}, "t.yaml")
    assert (grid_only.search.metric, grid_only.search.mode) == (default, "max")
    for metric in good:
        assert _spec(search={"metric": metric}, data=data).search.metric == metric
    assert metrics_of(task) == tuple(good)


@pytest.mark.parametrize("task, metric, choices", [
    ("sst2", "val_f1", "val_accuracy, train_loss (default val_accuracy, SST-2's main metric)"),
    ("sst2", "val_matthews", "val_accuracy, train_loss"),
    ("mrpc", "val_matthews", "val_f1, val_accuracy, train_loss (default val_f1, MRPC's main metric)"),
    ("cola", "val_f1", "val_matthews, val_accuracy, train_loss"),
    ("mrpc", "quiz_loss", "val_f1, val_accuracy, train_loss"),
])
def test_a_metric_the_task_does_not_log_is_refused_in_one_line(task, metric, choices):
    with pytest.raises(SpecError) as error:
        _spec(search={"metric": metric}, data={"task": task})
    message = str(error.value)
    title = TASKS[task].title
    assert message.startswith(f"t.yaml: search.metric = {metric!r}: {title} trials do not log it; use one of "
                              f"{choices}") and "\n" not in message, message
