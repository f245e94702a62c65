"""The stage loop: each stage's unfinished trials as one Ray Tune run of Ray Train trainers.

Stage 1 fine-tunes teachers and baselines; stage 2 distils from their folders, so a stage-2 trial
whose teacher failed is not started (it is reported failed, naming the teacher). A trial already
done in the storage is not trained again: its folder becomes a finished MLflow run of this sweep
(``runs.adopt_finished``). Every trial to train gets its MLflow run before Tune starts, so a
restarted worker continues the same run.

Under ``search: {scheduler: asha}`` a stage's Tune run may stop a search sample's trial early
(``orchestrator/run/asha.py``): it is recorded as stopped (``orchestrator/run/stopped.py``), not failed,
and a re-run adopts it as stopped instead of training it. Under ``search: {algorithm: optuna}``
Tune's search algorithm adds the trials Optuna suggests to the stage while it runs
(``orchestrator/run/optuna_search.py``), each with its MLflow run opened by this loop.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.plan.planner import Plan, PlannedTrial
from orchestrator.plan.studies import Record
from orchestrator.run.stopped import Rival, Stop, rivals, stays_stopped
from orchestrator.spec.search import SearchSpec
from orchestrator.spec.space import SweepSpec
from orchestrator.tracking import runs
from trainers.data import tasks
from trainers.record.layout import StorageLayout
from trainers.runtime.payload import PeerTrial, TrialPayload, TrialResources

if TYPE_CHECKING:
    from ray.tune.search import Searcher

# The Tune wrapper only waits on its trainer, so it must hold no CPU: with even 0.01 CPU each, two
# wrappers on a 2-CPU machine leave 1.98 CPUs and the second trainer's 1-CPU worker waits for the
# first trial to end. Tune refuses a request of nothing ({"cpu": 0}); one byte of Ray's logical
# memory resource is a request that costs nothing.
TRIAL_RESOURCES = {"cpu": 0, "memory": 1}


@dataclass
class Outcome:
    trial: PlannedTrial
    status: str  # trained | reused | stopped | failed
    error: str = ""


@dataclass
class SweepRuns:
    """The sweep's MLflow experiment and parent run, and its child runs by trial key."""

    client: object
    experiment_id: str
    parent_id: str
    sweep: str
    tracking_uri: str
    existing: dict[str, object] = field(default_factory=dict)

    def adopt(self, trial: PlannedTrial, layout: StorageLayout) -> None:
        # A stopped trial's workers outlive Tune's stop by up to an epoch or so: one that wrote its
        # folder meanwhile finished after all.
        layout.stopped_file(trial.key).unlink(missing_ok=True)
        runs.forget_stop(self.client, trial, self.existing)
        runs.adopt_finished(self.client, self.experiment_id, self.parent_id, self.sweep, trial,
                            layout, self.existing)

    def open(self, trial: PlannedTrial) -> str:
        runs.forget_stop(self.client, trial, self.existing)
        return runs.ensure_trial_run(self.client, self.experiment_id, self.parent_id, self.sweep,
                                     trial, self.existing)

    def stop(self, trial: PlannedTrial, stop: Stop) -> None:
        runs.record_stopped(self.client, self.experiment_id, self.parent_id, self.sweep, trial, stop,
                            self.existing)


def run_stages(spec: SweepSpec, plan: Plan, layout: StorageLayout, tracked: SweepRuns,
               slots: int) -> list[Outcome]:
    """Train what is not done, stage by stage; every planned trial gets one outcome."""
    resources = trial_resources(spec)
    teacher_keys = {k for t in plan.trials for k in t.teacher_keys}
    outcomes: list[Outcome] = []
    for stage, trials in sorted(plan.stages.items()):
        for trial in trials:  # marked done but lost files: trained again (the worker replaces them)
            if why := layout.unfinished(trial.key):
                print(f"note: {trial.name} ({trial.key[:8]}): {why}; training it again")
                layout.unmark(trial.key)
        for trial in trials:  # a cohort's member is trained by its first member's trial: again
            if trial.lead and not layout.is_done(trial.key) and layout.is_done(trial.lead):
                print(f"note: {trial.name} ({trial.key[:8]}) is not done; training its cohort again")
                layout.unmark(trial.lead)
        todo = [t for t in trials if not layout.is_done(t.key)]
        kept = [t for t in todo if stays_stopped(t, layout, spec.search.scheduler, teacher_keys)]
        for trial in trials:
            if trial not in todo:
                tracked.adopt(trial, layout)
                outcomes.append(Outcome(trial, "reused"))
            elif trial in kept:
                tracked.stop(trial, Stop.read(layout, trial.key))
                outcomes.append(Outcome(trial, "stopped"))
        todo = [t for t in todo if t not in kept]
        # A teacher that failed, or could not start because its own teacher had (a chain's hops).
        failed = {o.trial.key: o.trial for o in outcomes if o.status == "failed"}
        blocked = [t for t in todo if failed.keys() & set(t.teacher_keys)]
        outcomes += [Outcome(t, "failed", "its teacher " + ", ".join(
            f"{failed[k].name} failed in stage {failed[k].stage}" for k in t.teacher_keys if k in failed))
            for t in blocked]
        todo = [t for t in todo if t not in blocked]
        if blocked and not todo:
            print(f"stage {stage}: nothing to train ({len(blocked)} of {len(trials)} trials wait on "
                  "a teacher that failed)")
            continue
        studies = [s for s in plan.studies if s.template.stage == stage]
        asking = sum(max(0, spec.search.num_samples - len(s.recorded)) for s in studies)
        if not todo and not asking:
            print(f"stage {stage}: all {len(trials)} trials already done"
                  f"{f' ({len(kept)} stopped early)' if kept else ''}")
            continue
        asked = f"{asking} Optuna suggestion(s) for {len(studies)} configuration(s)"
        print(f"stage {stage}: " + (f"training {len(todo)} of {len(trials)} trials" if todo else "")
              + (", then " if todo and asking else "") + (asked if asking else ""))

        # A cohort's other members ride on their first member's trial, which writes their folders.
        by_key = {t.key: t for t in todo}
        riders = {t.key: t for t in todo if t.lead in by_key}

        # Every other member of a cohort, done or not: its trial trains them all and writes each folder.
        members = {t.key: [r for r in trials if r.lead == t.key] for t in todo}

        def payload(trial: PlannedTrial, members: dict[str, list[PlannedTrial]] = members) -> TrialPayload:
            peers = tuple(PeerTrial(r.config, r.key, r.name, tracked.open(r))
                          for r in members.get(trial.key, []))
            return TrialPayload(config=trial.config, key=trial.key, name=trial.name,
                                run_id=tracked.open(trial), tracking_uri=tracked.tracking_uri,
                                resources=resources, layout=layout, peers=peers)

        payloads = {t.name: payload(t) for t in todo if t.key not in riders}
        contenders = rivals(todo, teacher_keys) if spec.search.scheduler == "asha" else {}
        searcher = None
        if studies:
            from orchestrator.run.optuna_search import StageSearch  # loads Optuna: only for its search

            logging.getLogger("optuna").setLevel(logging.WARNING)  # not a line per study it creates
            searcher = StageSearch(spec.search, sorted(payloads), studies,
                                   Record.read(layout, spec.name), plan.keying, layout, payload)
        errors, stops = tune_stage(f"{spec.name}-stage{stage}", payloads, layout, slots,
                                   spec.search, contenders, searcher)
        for trial in [*todo, *(searcher.created if searcher else [])]:
            if layout.is_done(trial.key):
                tracked.adopt(trial, layout)  # its run FINISHED even if its worker died closing it
                outcomes.append(Outcome(trial, "trained"))
            elif trial.name in stops:
                # The marker first: a driver killed before MLflow hears of it is mended by a re-run.
                stop = dataclasses.replace(stops[trial.name], run_id=payloads[trial.name].run_id)
                stop.write(layout, trial.key)
                tracked.stop(trial, stop)
                outcomes.append(Outcome(trial, "stopped"))
            elif trial.key in riders:
                lead = by_key[trial.lead]
                outcomes.append(Outcome(trial, "failed", f"its cohort's trial {lead.name} failed: "
                                        + errors.get(lead.name, "no result")))
            else:
                outcomes.append(Outcome(trial, "failed", errors.get(trial.name, "no result")))
    return outcomes


def trial_resources(spec: SweepSpec) -> TrialResources:
    res = spec.resources
    return TrialResources(workers=res.workers_per_trial, cpus_per_worker=res.cpus_per_worker,
                          gpus_per_worker=res.gpus_per_worker, max_failures=res.max_failures,
                          kernels=res.kernels)


def concurrency(spec: SweepSpec, cluster: dict[str, float], cap: int | None) -> int:
    """Trials that fit side by side, under ``--max-concurrent``, ``resources.max_concurrent`` and
    ``search.max_concurrent``: Tune would start every wrapper at once and leave their trainers
    queueing for CPUs, which costs each one a Python start-up for nothing."""
    res = spec.resources
    slots = int(cluster.get("CPU", 0) // (res.workers_per_trial * res.cpus_per_worker))
    if res.gpus_per_worker:
        slots = min(slots, int(cluster.get("GPU", 0) // (res.workers_per_trial * res.gpus_per_worker)))
    for limit in (cap, res.max_concurrent, spec.search.max_concurrent):
        if limit:
            slots = min(slots, limit)
    return max(1, slots)


# A metric's short name in the sweep's columns (Tune's progress table, the summary's).
SHORT_NAMES = {"accuracy": "acc", "f1": "f1", "matthews": "mcc"}


def main_column(task: str, split: str) -> tuple[str, str]:
    """The task's main metric on ``split`` (``val``, ``test``) as (its key in a trial's result, its
    column's title): SST-2's ``val_accuracy``, "val acc", as ever; MRPC's ``val_f1``, "val f1". The
    columns show what the task's report is headed by and its search optimises by default."""
    main = tasks.get(task).main_metric
    return f"{split}_{main}", f"{split} {SHORT_NAMES.get(main, main)}"


def tune_stage(name: str, payloads: dict[str, TrialPayload], layout: StorageLayout, slots: int,
               search: SearchSpec, contenders: dict[str, Rival],
               searcher: Searcher | None = None) -> tuple[dict[str, str], dict[str, Stop]]:
    """One Tune run over the stage's trials (``name``: its experiment), ASHA judging the
    ``contenders`` if any; errors and early stops by trial name. A ``searcher`` (an Optuna
    search's) hands Tune the ``payloads``' trials and then its own; without one, Tune runs the
    payloads' names as a grid."""
    from ray import tune

    from orchestrator.run.asha import SampleASHA
    from orchestrator.run.trainable import run_trial

    # A failed trial is listed at the end with its error in one line and its error.txt; Tune's own
    # log of it is a page of Ray's internal traceback.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    trainable = tune.with_resources(tune.with_parameters(run_trial, payloads=payloads), TRIAL_RESOURCES)
    # Every trial of a sweep shares its data, so any payload's says the task.
    val, title = main_column(next((p.config.data.task for p in payloads.values()), "sst2"), "val")
    reporter = tune.CLIReporter(metric_columns={"epoch": "epoch", "train_loss": "loss", val: title},
                                parameter_columns=[], max_report_frequency=30,
                                print_intermediate_tables=True, max_column_length=60)
    scheduler = SampleASHA(search, contenders) if contenders else None
    tuner = tune.Tuner(
        trainable,
        param_space={} if searcher else {"name": tune.grid_search(sorted(payloads))},
        # A wrapper reused for the next trial saves a process start-up, but one whose trial was
        # stopped still waits on its trainer: Tune's reset gives it 2 s to end, then fails the next
        # trial ("Trainable runner reuse requires reset_config()"). Under a scheduler, none is reused.
        tune_config=tune.TuneConfig(max_concurrent_trials=slots, reuse_actors=scheduler is None,
                                    scheduler=scheduler, search_alg=searcher,
                                    num_samples=-1 if searcher else 1,  # -1: until it is FINISHED
                                    trial_name_creator=lambda t: t.config["name"],
                                    trial_dirname_creator=lambda t: t.config["name"]),
        run_config=tune.RunConfig(name=name, storage_path=str(layout.tune),
                                  progress_reporter=reporter, verbose=1),
    )
    results = tuner.fit()
    errors = {r.config["name"]: f"{error_line(r.error)} (logs: {Path(r.path) / 'error.txt'})"
              for r in results if r.error}
    return errors, dict(scheduler.stopped) if scheduler else {}


def error_line(error: BaseException) -> str:
    """What went wrong, in one line: the last line of the error that is not part of a traceback
    (Ray wraps a worker's error in its own, with colour codes and frames)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(("File ", "^", "Traceback", "~"))]
    return (said or lines or [type(error).__name__])[-1][:240]
