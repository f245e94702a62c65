"""Best-space files, unit by unit (the whole report's: ``test_search.py``): which space file a
sweep ran, read from its run's ``command`` or ``space`` tag; whether that file still draws what the
runs recorded; an Optuna search's files, one per configuration with its best run's own values."""

from __future__ import annotations

import pytest
import yaml

from orchestrator import paths
from orchestrator.report.best_space import (
    BEST_SEEDS,
    SweepSpace,
    check_draws,
    find_space,
    shown,
    write_best_spaces,
)
from orchestrator.report.labels import SweepNames
from orchestrator.report.reader import GroupKey, SweepData, TrialRun
from orchestrator.report.search import Objective, rank
from orchestrator.spec.space import parse_spec

KD = GroupKey("kd", ("bert",), "distilbert")
FT = GroupKey("finetune", (), "distilbert")
TEACHER = GroupKey("finetune", (), "bert")
SPACES = paths.PROJECT_ROOT / "search_spaces"


def _tags(**tags) -> SweepData:
    return SweepData("s", None, tags, None, (), (), 0)


@pytest.mark.parametrize("tags, space", [
    ({"command": "python -m orchestrator.sweep --space search_spaces/cpu.yaml --name x"}, "cpu.yaml"),
    ({"command": "metadistil-sweep --name x --space=search_spaces/mrpc.yaml"}, "mrpc.yaml"),
    ({"command": "python -m orchestrator.sweep --name x", "space": "paper"}, "smoke.yaml"),  # the default
    ({"space": "paper"}, "paper.yaml"),
])
def test_the_space_comes_from_the_command_else_the_space_tag(tags, space):
    found, why = find_space(_tags(**tags))
    assert why == "" and found.path == SPACES / space and found.spec.name == space.removesuffix(".yaml")
    assert found.raw == yaml.safe_load(found.path.read_text())


def test_no_space_gone_or_no_longer_valid_says_why(tmp_path):
    assert find_space(_tags()) == (None, "the sweep run records no command and no space")
    gone = tmp_path / "gone.yaml"
    assert find_space(_tags(command=f"sweep --space {gone}")) == (None, f"its space file {gone} is not there")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nseeds: [0, 0]\ngrid: [{methods: [finetune], students: [bert]}]\n")
    found, why = find_space(_tags(command=f"sweep --space {broken}"))
    assert found is None
    reason = f"{broken}: seeds = [0, 0]: seeds repeat; list each seed once"
    assert why == f"its space file {broken} no longer reads ({reason})"


RAW = {"name": "tune", "seeds": [0], "data": {"train_size": 100, "quiz_size": 10, "test_size": 50},
       "train": {"epochs": 2, "lr": {"loguniform": [1.0e-5, 1.0e-3]}, "alpha": {"uniform": [0.2, 0.8]}},
       "teacher_train": {"lr": 1.0e-4},
       "grid": [{"methods": ["finetune"], "students": ["distilbert"]},
                {"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert"]}],
       "search": {"algorithm": "random", "num_samples": 3}}


def _space(tmp_path, **search) -> SweepSpace:
    raw = {**RAW, "search": {**RAW["search"], **search}}
    return SweepSpace(tmp_path / "tune.yaml", raw, parse_spec(raw, "tune.yaml"))


def _run(key, sample, searched, val=0.8, seed=0) -> TrialRun:
    return TrialRun(f"{key.method}{sample}", "", key, seed, 80.0, 1, 2, "tiny", "", 0, sample=sample,
                    searched=tuple(sorted(searched.items())), last=(("val_accuracy", val),))


def test_the_space_must_still_draw_what_the_runs_recorded(tmp_path):
    space = _space(tmp_path)
    drawn = space.spec.sample_values(2)
    runs = [_run(KD, 2, {"lr": drawn["train.lr"], "alpha": drawn["train.alpha"]}), _run(TEACHER, None, {})]
    assert check_draws(space, runs) == ""
    changed = _run(KD, 2, {"lr": drawn["train.lr"] * 1.000001, "alpha": drawn["train.alpha"]})
    assert check_draws(space, [changed]).startswith(f"{shown(space.path)} no longer draws lr = ")
    assert "for sample 2 (run kd2): it changed since the sweep" in check_draws(space, [changed])
    assert "no longer draws" in check_draws(_space(tmp_path, seed=1), runs)  # another seed, other draws


def test_an_optuna_runs_values_need_only_be_searched_still(tmp_path):
    space = _space(tmp_path, algorithm="optuna")
    assert check_draws(space, [_run(KD, 0, {"lr": 3.21e-4, "alpha": 0.3})]) == ""
    said = check_draws(space, [_run(KD, 0, {"temperature": 2.0})])
    assert said == f"{shown(space.path)} no longer searches temperature (run kd0): it changed since the sweep"


def test_an_optuna_search_writes_each_configurations_best_values(tmp_path):
    space = _space(tmp_path, algorithm="optuna")
    runs = [_run(KD, 0, {"lr": 2.5e-4, "alpha": 0.3}, val=0.70),
            _run(KD, 1, {"lr": 7.123456789e-5, "alpha": 0.65}),  # KD's best
            _run(FT, 0, {"lr": 4.4e-5}), _run(TEACHER, None, {})]
    ranking = rank(SweepData("tune", None, {}, None, tuple(runs), (), 0), Objective())
    out = tmp_path / "out"
    out.mkdir()
    best = write_best_spaces(space, ranking, SweepNames.of(r.key for r in runs), "tune", out)
    assert sorted((p.name, key, sample) for key, sample, p in best.files) == [
        ("best_distilbert__finetune.yaml", FT, 0), ("best_distilbert_from_bert__kd.yaml", KD, 1)]
    assert best.missing == ()  # the teacher's fine-tune comes with the configuration it teaches
    kd = parse_spec(yaml.safe_load((out / "best_distilbert_from_bert__kd.yaml").read_text()), "kd.yaml")
    assert kd.name == "tune-best-distilbert_from_bert__kd" and kd.seeds == BEST_SEEDS
    assert kd.search.algorithm == "grid" and [b.methods for b in kd.grid] == [["kd"]]
    assert (kd.train.lr, kd.train.alpha) == (7.123456789e-5, 0.65)  # every digit kept
    assert kd.train_spec("bert", teacher=True).lr == 1.0e-4
    ft = parse_spec(yaml.safe_load((out / "best_distilbert__finetune.yaml").read_text()), "ft.yaml")
    assert (ft.train.lr, ft.train.alpha) == (4.4e-5, 0.2)  # alpha reaches no fine-tune: its lowest
    assert (out / "best_distilbert__finetune.yaml").read_text().startswith(
        "# Generated by `python -m orchestrator.report --sweep tune` from its optuna search")


def test_a_path_is_shown_relative_to_the_project_where_it_lies_in_it(tmp_path):
    assert shown(SPACES / "smoke.yaml") == "search_spaces/smoke.yaml"
    assert shown(tmp_path / "x.yaml") == str(tmp_path / "x.yaml")


def test_a_chains_best_space_keeps_its_assistants(tmp_path):
    """A teacher-assistant chain re-runs as the chain, not as the direct distillation beside it."""
    from orchestrator.report.best_space import _block, _stem

    raw = {"name": "s", "seeds": [0], "grid": [{"methods": ["kd"], "teachers": [["minilm"]],
                                                 "students": ["minilm@2"], "assistants": [[], ["minilm@4"]]}]}
    space = SweepSpace(tmp_path / "s.yaml", raw, parse_spec(raw, "s.yaml"))
    chain = GroupKey("kd", ("minilm",), "minilm@2", assistants=("minilm@4",))
    direct = GroupKey("kd", ("minilm",), "minilm@2")
    assert _block(space, chain)["assistants"] == [["minilm@4"]]
    assert "assistants" not in _block(space, direct)
    assert _stem(chain, space.spec) == "minilm@2_from_minilm_via_minilm@4__kd"
    assert _block(space, GroupKey("kd", ("minilm",), "minilm@2", assistants=("minilm@3",))) is None
