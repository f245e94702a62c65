"""The MLflow runs of a sweep, created and mended by the driver (workers only log into them).

- one experiment per sweep, one parent run for the sweep, found again on every re-run;
- one child run per trial, found by its ``trial_key`` tag or created before the trial starts, so a
  restarted worker or a re-run sweep continues the same run: no duplicates;
- a trial already finished (in this sweep or another one sharing the storage) gets a run in this
  experiment built from its ``result.json``, tagged ``reused_from``, so the report is one query,
  with its student logged from the folder as an MLflow model (every finished run holds one);
- a trial stopped early by the search's scheduler ends KILLED, tagged ``stopped_at_epoch`` and
  ``stopped_by`` (``orchestrator/run/stopped.py``), and is adopted as such by a re-run;
- runs of a killed driver left "RUNNING" are resumed if still planned, else marked FAILED;
- every run the driver creates carries MLflow's context tags (``orchestrator/tracking/provenance.py``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.check.artifacts import local_path
from orchestrator.plan.planner import PlannedTrial
from orchestrator.run.stopped import Stop
from orchestrator.tracking.names import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, SWEEP_RUN_KIND
from orchestrator.tracking.provenance import context_tags
from orchestrator.tracking.store import TrackingError, parent_run, redact, search_all, sweep_names
from trainers.record.artifact_files import file_problem, model_problem
from trainers.record.artifacts import MODEL_ARTIFACT_DIR, MODEL_DIR_TAG, PREDICTIONS_ARTIFACT, RESULT_FILE
from trainers.record.layout import StorageLayout
from trainers.record.model_log import has_model, log_model_and_finish, rewrite_model
from trainers.record.run_log import log_environment, log_results, logged_epochs

STOP_TAGS = ("stopped_at_epoch", "stopped_by")


def check_resumable(uri: str, sweep: str) -> None:
    """For ``--resume``: the sweep must already have its parent run in this tracking store."""
    # A store never used before says it is creating its tables: noise around a one-line error.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is not None and parent_run(client, experiment.experiment_id) is not None:
        return
    known = sweep_names(client)
    raise TrackingError(f"--resume: no sweep {sweep!r} in {redact(uri)} "
                        f"(known: {', '.join(known) or 'none'}); "
                        "check --name / the space's name, or drop --resume to start it")


def ensure_experiment(client: MlflowClient, sweep: str, artifact_root: Path | None) -> str:
    """The sweep's experiment, marked as model training (also one made before the mark existed),
    so that MLflow's UI opens it on its runs."""
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        location = (artifact_root / sweep).resolve().as_uri() if artifact_root else None
        experiment_id = client.create_experiment(sweep, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment_id


def ensure_parent_run(client: MlflowClient, experiment_id: str, sweep: str, tags: dict[str, str]) -> str:
    found = parent_run(client, experiment_id)
    if found is not None:
        run_id = found.info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(experiment_id, run_name=sweep, tags={
            **context_tags(), "kind": SWEEP_RUN_KIND, "sweep": sweep}).info.run_id
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return run_id


def trial_runs(client: MlflowClient, experiment_id: str) -> dict[str, object]:
    """Child runs of the experiment by ``trial_key`` (the latest started wins)."""
    runs = {}
    for run in search_all(client, experiment_id, "tags.trial_key != ''"):
        runs.setdefault(run.data.tags["trial_key"], run)
    return runs


def ensure_trial_run(client: MlflowClient, experiment_id: str, parent_id: str, sweep: str,
                     trial: PlannedTrial, existing: dict[str, object]) -> str:
    """The trial's run: the existing one (resumed) or a new one with tags and params."""
    run = existing.get(trial.key)
    if run is not None:
        if run.info.status != "RUNNING":
            client.update_run(run.info.run_id, status="RUNNING")
        return run.info.run_id
    tags = {**context_tags(), **trial.tags, "sweep": sweep, "mlflow.parentRunId": parent_id}
    run_id = client.create_run(experiment_id, run_name=trial.name, tags=tags).info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in _params(trial).items()])
    existing[trial.key] = client.get_run(run_id)
    return run_id


def adopt_finished(client: MlflowClient, experiment_id: str, parent_id: str, sweep: str,
                   trial: PlannedTrial, layout: StorageLayout, existing: dict[str, object]) -> str:
    """Make sure a finished trial has a FINISHED run in this experiment, with its model, from its
    folder: also the trial's own run when its worker wrote the folder but was killed before
    closing the run (a trial the scheduler stopped whose worker finished its last epoch
    meanwhile), and a finished run logged before runs held their model."""
    folder = layout.model_dir(trial.key)
    result = json.loads((folder / RESULT_FILE).read_text())
    run = existing.get(trial.key)
    if run is not None:  # what the worker did since the driver last looked
        run = existing[trial.key] = client.get_run(run.info.run_id)
    if run is not None and run.info.status == "FINISHED":
        if MODEL_DIR_TAG not in run.data.tags:  # its worker closed it before workers tagged it
            client.set_tag(run.info.run_id, MODEL_DIR_TAG, str(folder))
        if not has_model(client, run.info.run_id):  # a run logged before models were
            log_model_and_finish(client.tracking_uri, run.info.run_id, folder)
        mend_artifacts(client, trial, run.info.run_id, folder)
        return run.info.run_id
    run_id = ensure_trial_run(client, experiment_id, parent_id, sweep, trial, existing)
    if result["run_id"] != run_id:
        client.set_tag(run_id, "reused_from", result["run_id"])
        client.log_inputs(run_id, datasets=_dataset_inputs(client, result["run_id"]))
    logged = logged_epochs(client, run_id)
    # Stamped when the trial finished (its worker wrote the time), else now: never 1970.
    stamp = int(1000 * result.get("timing", {}).get("finished", time.time()))
    metrics = [Metric(k, v, stamp, epoch) for epoch, row in enumerate(result["history"], start=1)
               if epoch not in logged for k, v in row.items()]
    metrics += [Metric(k, v, stamp, 0) for k, v in result["final"].items()]
    for start in range(0, len(metrics), 900):  # MLflow caps a batch at 1,000 metrics
        client.log_batch(run_id, metrics=metrics[start:start + 900])
    log_environment(client, run_id, result.get("environment", {}))  # what the worker ran on
    log_results(client, run_id, folder)
    client.set_tag(run_id, MODEL_DIR_TAG, str(folder))  # predict loads it from there while it exists
    log_model_and_finish(client.tracking_uri, run_id, folder)
    mend_artifacts(client, trial, run_id, folder)  # a model logged before its files went missing
    existing[trial.key] = client.get_run(run_id)
    return run_id


def mend_artifacts(client: MlflowClient, trial: PlannedTrial, run_id: str, folder: Path) -> list[str]:
    """Log a finished run's test predictions and model files again from its trial's folder where
    the store lost them (deleted, never synced), so predict, the demo and the report find them:
    the model into the same logged model, which its registered versions point at. Only a store
    whose artifacts are local files is looked at (a server's would be downloaded to be checked).
    Says what it mended, and returns it."""
    run = client.get_run(run_id)
    mended = []
    artifacts = local_path(run.info.artifact_uri)
    if (artifacts is not None and file_problem(artifacts / PREDICTIONS_ARTIFACT)
            and file_problem(folder / Path(PREDICTIONS_ARTIFACT).name) is None):
        log_results(client, run_id, folder)
        mended.append(f"test predictions ({artifacts / PREDICTIONS_ARTIFACT})")
    if run.outputs and run.outputs.model_outputs:
        model = client.get_logged_model(run.outputs.model_outputs[-1].model_id)
        location = local_path(model.artifact_location)
        if (location is not None and model_problem(location)
                and model_problem(folder / MODEL_ARTIFACT_DIR) is None):
            rewrite_model(client.tracking_uri, model.model_id, folder)
            mended.append(f"model ({location})")
    if mended:
        print(f"note: {trial.name}: its MLflow run {run_id} had lost its {' and '.join(mended)}; "
              f"logged again from {folder}")
    return mended


def record_stopped(client: MlflowClient, experiment_id: str, parent_id: str, sweep: str,
                   trial: PlannedTrial, stop: Stop, existing: dict[str, object]) -> str:
    """Make sure a stopped trial has a KILLED run in this experiment, tagged where it stopped and
    holding the metrics it was judged on: its own run, or one made for it from its marker (stopped
    in another sweep sharing the storage, or by a driver that died before saying so)."""
    tags = {"stopped_at_epoch": str(stop.epoch), "stopped_by": stop.by}
    run = existing.get(trial.key)
    if (run is not None and run.info.status == "KILLED"
            and all(run.data.tags.get(k) == v for k, v in tags.items())):
        return run.info.run_id
    run_id = ensure_trial_run(client, experiment_id, parent_id, sweep, trial, existing)
    if stop.run_id and stop.run_id != run_id:
        tags["reused_from"] = stop.run_id
    # The worker logs an epoch after reporting it to Tune, so it may be killed in between.
    metrics = ([Metric(k, v, int(1000 * time.time()), stop.epoch) for k, v in stop.metrics.items()]
               if stop.epoch not in logged_epochs(client, run_id) else [])
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
    client.set_terminated(run_id, "KILLED")
    existing[trial.key] = client.get_run(run_id)
    return run_id


def forget_stop(client: MlflowClient, trial: PlannedTrial, existing: dict[str, object]) -> None:
    """A stopped trial trained to its end after all: its run is no longer tagged as stopped."""
    run = existing.get(trial.key)
    tags = [tag for tag in STOP_TAGS if run is not None and tag in run.data.tags]
    for tag in tags:
        client.delete_tag(run.info.run_id, tag)
    if tags:
        existing[trial.key] = client.get_run(run.info.run_id)


def close_unfinished(client: MlflowClient, experiment_id: str, status: str) -> None:
    """At the end of a sweep (or on Ctrl-C), no child run stays RUNNING: a re-run reopens it."""
    for run in trial_runs(client, experiment_id).values():
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status)


def fail_orphans(client: MlflowClient, experiment_id: str, planned_keys: set[str]) -> int:
    """Mark RUNNING child runs that no planned trial will continue as FAILED; return how many."""
    count = 0
    for key, run in trial_runs(client, experiment_id).items():
        if run.info.status == "RUNNING" and key not in planned_keys:
            client.set_terminated(run.info.run_id, "FAILED")
            count += 1
    return count


def _dataset_inputs(client: MlflowClient, run_id: str) -> list:
    """The splits the run that trained a trial logged, for a run that reuses its folder; none when
    that run is in another store."""
    try:
        return list(client.get_run(run_id).inputs.dataset_inputs)
    except MlflowException:
        return []


def _params(trial: PlannedTrial) -> dict[str, str]:
    """The resolved config, flattened, without machine-specific paths."""
    fields = trial.config.to_dict()
    fields.pop("teacher_dirs")
    data = fields.pop("data")
    flat = {k: str(v) for k, v in fields.items()}
    flat.update({f"data.{k}": str(v) for k, v in data.items()})
    return flat
