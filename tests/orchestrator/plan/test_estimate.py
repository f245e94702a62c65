"""The dry run's time estimate: list scheduling of a stage's trials, and a cost that follows the
models' size and the method."""

from __future__ import annotations

import pytest

from orchestrator.plan.estimate import makespan

STAGES = [[30.0], [30.0, 30.0, 60.0], [5.0, 70.0, 20.0, 20.0, 65.0, 1.0],
          [float(n % 7 + 1) for n in range(40)]]


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


def test_estimate_follows_the_models_cost(tmp_path):
    """A MiniLM teacher costs more than its 2-layer cut, which costs more than a tiny preset; a
    MetaDistil trial more than KD on the same pair; a hub model is not estimated."""
    from orchestrator.plan.estimate import TRIAL_OVERHEAD_S, example_cost, trial_seconds
    from trainers.config import DataConfig, TrainConfig
    from trainers.models.refs import packaged_dir

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


def _graph():
    """Two chains of three hops beside six independent trials, in stages by depth."""
    from types import SimpleNamespace

    trials, seconds = [], {}
    for chain in range(2):
        before = ()
        for hop in range(3):
            key = f"c{chain}h{hop}"
            trials.append(SimpleNamespace(key=key, stage=hop + 1, teacher_keys=before))
            seconds[key], before = 30.0 + 10 * hop + chain, (key,)
    for n in range(6):
        trials.append(SimpleNamespace(key=f"i{n}", stage=1 + n % 3, teacher_keys=()))
        seconds[f"i{n}"] = float(5 + 7 * n)
    return trials, seconds


@pytest.mark.parametrize("slots", [1, 2, 3, 16])
def test_without_barriers_a_sweep_lies_between_its_critical_path_and_its_layers(slots):
    from orchestrator.plan.estimate import critical_path, unlayered_seconds

    trials, seconds = _graph()
    layers = [[seconds[t.key] for t in trials if t.stage == s] for s in (1, 2, 3)]
    free = unlayered_seconds(trials, seconds, slots)
    assert critical_path(trials, seconds) - 1e-9 <= free <= sum(makespan(s, slots) for s in layers) + 1e-9
    assert free >= sum(seconds.values()) / slots - 1e-9
    if slots == 1:
        assert free == pytest.approx(sum(seconds.values()))
    if slots >= len(trials):  # a slot for every trial: only the teachers hold a trial back
        assert free == pytest.approx(critical_path(trials, seconds))
    done = dict(seconds, c0h0=None, i0=None)  # done already: they cost nothing
    assert unlayered_seconds(trials, done, slots) <= free
