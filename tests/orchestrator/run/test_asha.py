"""The early-stopping scheduler on its own (Tune's trials faked: ASHA reads their id and config):
it stops a sample that trails its rivals, judges only rivals of one group against each other,
never a teacher nor a trial at its last epoch, and keeps what it stopped for the driver."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from orchestrator.run.asha import SampleASHA
from orchestrator.run.stopped import Rival, Stop
from orchestrator.spec.search import SearchSpec

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
SEARCH = SearchSpec(algorithm="random", num_samples=4, scheduler="asha", grace_period=1, reduction_factor=2)


def _trial(name: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=name, config={"name": name})


def _scheduler(rivals: dict[str, Rival], search: SearchSpec = SEARCH) -> tuple[SampleASHA, dict]:
    scheduler = SampleASHA(search, rivals)
    trials = {name: _trial(name) for name in [*rivals, "teacher"]}
    for trial in trials.values():
        scheduler.on_trial_add(None, trial)
    return scheduler, trials


def _report(scheduler: SampleASHA, trial, epoch: int, val: float, loss: float = 0.5) -> str:
    return scheduler.on_trial_result(None, trial, {"epoch": epoch, "val_accuracy": val, "train_loss": loss,
                                                   "training_iteration": epoch, "epoch_time_s": 1.0})


def test_a_sample_behind_its_rivals_is_stopped_and_recorded():
    scheduler, t = _scheduler({n: Rival("kd", 3) for n in ("s0", "s1", "s2")})
    assert _report(scheduler, t["s0"], 1, 0.80) == CONTINUE  # the first at a rung has no one to trail
    assert _report(scheduler, t["s1"], 1, 0.60, loss=0.69) == STOP
    assert _report(scheduler, t["s2"], 1, 0.85) == CONTINUE
    assert scheduler.stopped == {"s1": Stop(epoch=1, metric="val_accuracy",
                                            metrics={"val_accuracy": 0.60, "train_loss": 0.69})}
    assert "1 trial(s) stopped" in scheduler.debug_string()


def test_groups_are_judged_apart_and_the_rest_run_to_their_end():
    scheduler, t = _scheduler({"kd-s0": Rival("kd", 3), "kd-s1": Rival("kd", 3), "md-s0": Rival("md", 3)})
    assert _report(scheduler, t["kd-s0"], 1, 0.90) == CONTINUE
    assert _report(scheduler, t["md-s0"], 1, 0.50) == CONTINUE  # MetaDistil is not KD's rival
    assert _report(scheduler, t["teacher"], 1, 0.10) == CONTINUE  # not a rival: never judged
    assert _report(scheduler, t["teacher"], 2, 0.10) == CONTINUE
    assert list(scheduler.stopped) == []


def test_a_trial_is_never_stopped_at_its_last_epoch():
    """Epochs drawn per sample: the group's horizon is 4, so a rung sits at epoch 2, the last epoch
    of a 2-epoch sample; and at the horizon ASHA alone would stop every trial."""
    scheduler, t = _scheduler({"long": Rival("g", 4), "short": Rival("g", 2), "other": Rival("g", 4)})
    for epoch, val in ((1, 0.9), (2, 0.9), (3, 0.9), (4, 0.9)):
        assert _report(scheduler, t["long"], epoch, val) == CONTINUE
    assert _report(scheduler, t["short"], 1, 0.95) == CONTINUE
    assert _report(scheduler, t["short"], 2, 0.10) == CONTINUE  # far behind, but at its end
    assert _report(scheduler, t["other"], 4, 0.10) == CONTINUE  # at the horizon: its end too
    assert scheduler.stopped == {}


def test_mode_min_on_train_loss_and_a_later_grace_period():
    search = SEARCH.model_copy(update={"metric": "train_loss", "mode": "min", "grace_period": 2})
    scheduler, t = _scheduler({n: Rival("g", 4) for n in ("a", "b")}, search)
    assert _report(scheduler, t["a"], 1, 0.5, loss=0.30) == CONTINUE
    assert _report(scheduler, t["b"], 1, 0.5, loss=0.90) == CONTINUE  # before the grace period
    assert _report(scheduler, t["a"], 2, 0.5, loss=0.20) == CONTINUE
    assert _report(scheduler, t["b"], 2, 0.5, loss=0.10) == CONTINUE  # lower loss is better
    assert _report(scheduler, t["b"], 3, 0.5, loss=0.10) == CONTINUE
    scheduler, t = _scheduler({n: Rival("g", 4) for n in ("a", "b")}, search)
    _report(scheduler, t["a"], 2, 0.5, loss=0.20)
    assert _report(scheduler, t["b"], 2, 0.5, loss=0.60) == STOP
    assert scheduler.stopped["b"].metric == "train_loss" and scheduler.stopped["b"].epoch == 2


def test_a_group_whose_epochs_end_by_the_grace_period_gets_no_asha():
    search = SEARCH.model_copy(update={"grace_period": 2})
    scheduler, t = _scheduler({n: Rival("g", 2) for n in ("a", "b")}, search)
    assert _report(scheduler, t["a"], 1, 0.9) == _report(scheduler, t["b"], 1, 0.1) == CONTINUE
    assert _report(scheduler, t["b"], 2, 0.1) == CONTINUE


def test_a_stopped_or_finished_trial_leaves_asha_cleanly():
    scheduler, t = _scheduler({n: Rival("g", 3) for n in ("a", "b")})
    _report(scheduler, t["a"], 1, 0.9)
    assert _report(scheduler, t["b"], 1, 0.1) == STOP
    last = {"epoch": 1, "val_accuracy": 0.1, "train_loss": 0.7}
    scheduler.on_trial_complete(None, t["b"], last)  # what Tune calls once it stopped the trial
    scheduler.on_trial_complete(None, t["teacher"], last)
    scheduler.on_trial_remove(None, t["a"])
