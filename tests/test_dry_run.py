"""``--dry-run``: the plan and its time estimate, printed without starting Ray or training."""

from __future__ import annotations

import re

import pytest

from orchestrator import sweep
from orchestrator.paths import DEFAULT_SPACE
from orchestrator.estimate import makespan
from tests.conftest import ROOT

STAGES = [[30.0], [30.0, 30.0, 60.0], [5.0, 70.0, 20.0, 20.0, 65.0, 1.0], [float(n % 7 + 1) for n in range(40)]]


@pytest.mark.parametrize("seconds", STAGES)
@pytest.mark.parametrize("slots", [1, 2, 3, 8])
def test_makespan_lies_between_the_bounds_of_list_scheduling(seconds, slots):
    span = makespan(seconds, slots)
    assert span >= max(seconds) and span >= sum(seconds) / slots - 1e-9
    assert span <= sum(seconds) / slots + max(seconds) + 1e-9  # Graham's bound for greedy order


@pytest.mark.parametrize("seconds", STAGES)
def test_one_slot_runs_one_trial_after_the_other(seconds):
    assert makespan(seconds, 1) == pytest.approx(sum(seconds))


def test_makespan_follows_tunes_order():
    # Two slots: the long trial, started third, runs after a short one instead of beside both.
    assert makespan([30.0, 30.0, 60.0], 2) == 90.0
    assert makespan([60.0, 30.0, 30.0], 2) == 60.0


def test_default_space_dry_run_plans_8_trials_within_ten_minutes(tmp_path, capsys):
    code = sweep.main(["--space", str(DEFAULT_SPACE), "--dry-run",
                       "--storage", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == 0 and "8 trials in 2 stage(s)" in out
    assert "stage 1 (fine-tune teachers and baselines): 3 trials, 0 already done" in out
    minutes = int(re.search(r"estimate for this machine \(.*\): ~(\d+) min", out).group(1))
    assert 1 <= minutes <= 10, out
    assert not (tmp_path / "store").exists()  # a dry run writes nothing


def test_paper_dry_run_prints_the_whole_plan_and_starts_nothing(tmp_path, capsys):
    code = sweep.main(["--space", str(ROOT / "search_spaces" / "paper.yaml"), "--dry-run",
                       "--storage", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == 0 and "48 trials in 2 stage(s)" in out
    lines = re.findall(r"^  [0-9a-f]{8}  (\S+) +(\d+) ep  train", out, re.M)
    assert len(lines) == 48  # every trial, each with its status
    teachers = [name for name, _ in lines if name.startswith(("bert__", "roberta__"))]
    assert len(teachers) == 9  # BERT, RoBERTa and a second BERT (for [bert, bert]) per seed
    assert all(epochs == ("3" if name in teachers else "15") for name, epochs in lines)
    assert "estimate for this machine" not in out  # hub models are not estimated
    assert not (tmp_path / "store").exists()


def test_estimate_follows_the_models_cost(tmp_path):
    """A MiniLM teacher costs more than its 2-layer cut, which costs more than a tiny preset; a
    MetaDistil trial more than KD on the same pair; a hub model is not estimated."""
    from orchestrator.estimate import TRIAL_OVERHEAD_S, example_cost, trial_seconds
    from trainers.config import DataConfig, TrainConfig
    from trainers.model_refs import packaged_dir

    minilm = str(packaged_dir("minilm"))
    costs = [example_cost(m, "tiny") for m in (minilm, f"{minilm}@2", "tinybert")]
    assert costs == sorted(costs, reverse=True) and costs[0] > 3 * costs[2]
    data = DataConfig(source="/nowhere", train_size=1000)
    kd, meta = (trial_seconds(TrainConfig(method=m, student=f"{minilm}@2", teachers=(minilm,),
                                          data=data, epochs=2)) for m in ("kd", "metadistil"))
    # the quiz and the teachers' backward at every step
    assert meta - TRIAL_OVERHEAD_S > 3 * (kd - TRIAL_OVERHEAD_S)
    assert example_cost("org/model", "tiny") is None
    assert trial_seconds(TrainConfig(method="finetune", student="org/model", data=data)) is None
