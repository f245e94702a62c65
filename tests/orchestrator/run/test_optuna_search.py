"""The Optuna search without Ray: Tune's calls to the stage's searcher made by hand, the storage
real. The same seed suggests the same trials; every suggestion is recorded before its trial
starts; an interrupted search is planned again from its record (finished trials reused, the
interrupted one resumed) and asks only for what it lacks; a repeated suggestion trains nothing."""

from __future__ import annotations

import json

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import build_plan
from orchestrator.plan.studies import Record
from orchestrator.run.optuna_search import StageSearch
from orchestrator.spec.space import parse_spec
from tests.conftest import ROOT
from trainers.record.layout import StorageLayout

GRID = [{"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert"]}]
TRAIN = {"lr": {"loguniform": [1.0e-5, 1.0e-3]}, "alpha": {"uniform": [0.2, 0.8]},
         "epochs": {"randint": [2, 4]}}


def _spec(train=None, num_samples=4, seed=0):
    return parse_spec({"name": "t", "seeds": [0], "grid": GRID, "train": train or TRAIN,
                       "teacher_train": {"lr": 1.0e-4, "epochs": 2},
                       "search": {"algorithm": "optuna", "num_samples": num_samples, "seed": seed}},
                      "t.yaml")


def _plan(spec, layout):
    return build_plan(spec, data_fingerprint="f0", storage=layout.root,
                      models=resolve_models(spec, ROOT / "t.yaml", strict=False))


def _searcher(spec, layout):
    """The stage-2 searcher as the stage loop makes it: the stage's unfinished trials go first."""
    plan = _plan(spec, layout)
    todo = sorted(t.name for t in plan.stages[2] if not layout.is_done(t.key))
    return plan, StageSearch(spec.search, todo, plan.studies, Record.read(layout, spec.name),
                             plan.keying, layout, open_trial=lambda trial: trial.key)


def _finish(layout, key, accuracy):
    """What a finished trial leaves: its result file (the folder's last write)."""
    layout.result_file(key).parent.mkdir(parents=True)
    layout.result_file(key).write_text(json.dumps({"history": [{"val_accuracy": accuracy}]}))


def _recorded(layout):
    return json.loads(layout.suggestions_file("t").read_text())


def test_the_same_seed_suggests_the_same_trials_in_bounds_and_types(tmp_path):
    made = []
    for run in ("a", "b", "c"):
        layout = StorageLayout(tmp_path / run)
        plan, searcher = _searcher(_spec(seed=1 if run == "c" else 0), layout)
        assert [t for t in plan.stages[2]] == [] and len(plan.studies) == 1
        configs = [searcher.suggest(f"trial{i}") for i in range(4)]
        assert searcher.suggest("trial4") == "FINISHED"
        assert [c["payload"] for c in configs] == [t.key for t in searcher.created]
        made.append([(t.name, t.key, t.searched) for t in searcher.created])
    assert made[0] == made[1] and made[0] != made[2]
    for name, _, searched in made[0]:
        values = dict(searched)
        assert 1.0e-5 <= values["lr"] <= 1.0e-3 and 0.2 <= values["alpha"] <= 0.8
        assert isinstance(values["epochs"], int) and 2 <= values["epochs"] <= 4
        assert "__kd__s" in name
    assert [n for n, _, _ in made[0]] == [f"distilbert_from_bert__kd__s{k}__seed0" for k in range(4)]


def test_an_interrupted_search_resumes_its_trials_and_asks_only_for_the_rest(tmp_path):
    layout = StorageLayout(tmp_path / "store")
    spec = _spec()
    _, first = _searcher(spec, layout)
    s0, s1 = first.suggest("t0"), first.suggest("t1")
    record = _recorded(layout)
    (group,) = record
    assert [s["sample"] for s in record[group]] == [0, 1]  # recorded before the trials run
    first.on_trial_result("t0", {"val_accuracy": 0.7, "training_iteration": 1})
    first.on_trial_complete("t0", {"val_accuracy": 0.7})
    _finish(layout, s0["payload"], 0.7)
    # The driver dies here: s1 was running, s2 and s3 never asked for.

    plan, again = _searcher(spec, layout)
    assert [t.key for t in plan.stages[2]] == [s0["payload"], s1["payload"]]
    assert again.suggest("u0") == {"name": s1["name"]}  # resumed by name, not suggested anew
    new = [again.suggest(f"u{i}") for i in (1, 2)]
    assert again.suggest("u3") == "FINISHED"
    assert [c["name"] for c in new] == [s0["name"].replace("__s0__", f"__s{k}__") for k in (2, 3)]
    assert {c["payload"] for c in new}.isdisjoint({s0["payload"], s1["payload"]})
    after = _recorded(layout)[group]
    assert after[:2] == record[group] and [s["sample"] for s in after] == [0, 1, 2, 3]
    again.on_trial_complete("u0", {"val_accuracy": 0.6})  # the resumed trial's result is told

    _, last = _searcher(spec, layout)  # all four recorded: the unfinished resume, none is asked
    resumed = [last.suggest(f"v{i}") for i in range(3)]
    assert resumed == [{"name": c["name"]} for c in (s1, *new)] and last.suggest("v3") == "FINISHED"


def test_a_repeated_suggestion_is_recorded_and_trains_nothing(tmp_path):
    """Four configurations and six suggestions: a study over choices repeats itself."""
    layout = StorageLayout(tmp_path / "store")
    spec = _spec(train={"temperature": {"choice": [1.0, 2.0]}, "soft_loss": {"choice": ["kl", "mse"]}},
                 num_samples=6)
    _, searcher = _searcher(spec, layout)
    started = []
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        if config == "FINISHED":
            break
        started.append(config["payload"])
        _finish(layout, config["payload"], 0.5 + i / 100)
        searcher.on_trial_complete(f"t{i}", {"val_accuracy": 0.5 + i / 100})
    assert len(started) == len(set(started)) <= 4
    (made,) = _recorded(layout).values()
    assert [s["sample"] for s in made] == list(range(6))
    assert len({json.dumps(s["values"], sort_keys=True) for s in made}) == len(started)
