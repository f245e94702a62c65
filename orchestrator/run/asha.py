"""Early stopping through Tune: one ASHA per group of rival trials (``orchestrator/run/stopped.py``).

Tune's ``ASHAScheduler`` judges a trial at epochs ``grace_period × reduction_factor^k`` and stops
it when its metric trails the best ``1 / reduction_factor`` of the trials judged at that epoch
before it. Its clock is ``epoch``, which every report carries (``trainers/runtime/worker.py``), rather than
Tune's ``training_iteration``: a trial a re-run resumes from its checkpoint reports epoch 3 first,
and is judged where it is. Its horizon ``max_t`` is the most epochs of its group.

Never stopped at its own last epoch: stopping there saves nothing, and Tune would kill the trial
while it evaluates on the test set and writes its folder (ASHA alone stops every trial that
reaches ``max_t``, and judges one at a rung that is its last epoch when its group's epochs differ).

This scheduler lives in the driver, in Tune's controller, and keeps the stops it decided
(``stopped``): the stage loop reads them there rather than guessing from what a trial left.
"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from orchestrator.run.stopped import Rival, Stop
from orchestrator.spec.search import SearchSpec


class SampleASHA(FIFOScheduler):
    """ASHA for the ``rivals`` (by run name, Tune's ``config["name"]``); every other trial of the
    stage runs to its end, first come first served, as without a scheduler."""

    def __init__(self, search: SearchSpec, rivals: dict[str, Rival]) -> None:
        super().__init__()
        # Tune's own: it checks that every report carries the metric, as for its ASHA.
        self._metric, self._mode = search.metric, search.mode
        self.stopped: dict[str, Stop] = {}
        self._rivals = rivals
        self._asha: dict[str, ASHAScheduler] = {}
        for group in {r.group for r in rivals.values()}:
            horizon = max(r.epochs for r in rivals.values() if r.group == group)
            if search.grace_period < horizon:  # else it judges no trial before its last epoch
                self._asha[group] = ASHAScheduler(
                    time_attr="epoch", metric=search.metric, mode=search.mode, max_t=horizon,
                    grace_period=search.grace_period, reduction_factor=search.reduction_factor,
                    stop_last_trials=False)

    def _judge(self, trial: Trial) -> tuple[Rival, ASHAScheduler] | None:
        rival = self._rivals.get(trial.config["name"])
        asha = self._asha.get(rival.group) if rival else None
        return (rival, asha) if rival and asha else None

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        if judged := self._judge(trial):
            judged[1].on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        judged = self._judge(trial)
        if judged is None:
            return TrialScheduler.CONTINUE
        rival, asha = judged
        # Asked first even at the last epoch: it records the trial's metric there for later rivals.
        action = asha.on_trial_result(tune_controller, trial, result)
        if action != TrialScheduler.STOP or result.get("epoch", 0) >= rival.epochs:
            return TrialScheduler.CONTINUE
        self.stopped[trial.config["name"]] = Stop.from_result(result, self._metric)
        return TrialScheduler.STOP

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        if judged := self._judge(trial):
            judged[1].on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        if judged := self._judge(trial):
            judged[1].on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"ASHA over {len(self._asha)} group(s) of samples: {len(self.stopped)} trial(s) stopped"
