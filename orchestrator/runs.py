"""The MLflow runs of a sweep, created and mended by the driver (workers only log into them).

- one experiment per sweep, one parent run for the sweep, found again on every re-run;
- one child run per trial, found by its ``trial_key`` tag or created before the trial starts, so a
  restarted worker or a re-run sweep continues the same run: no duplicates;
- a trial already finished (in this sweep or another one sharing the storage) gets a run in this
  experiment built from its ``result.json``, tagged ``reused_from``, so the report is one query;
- runs of a killed driver left "RUNNING" are resumed if still planned, else marked FAILED.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from orchestrator.plan import PlannedTrial, model_dir
from orchestrator.tracking import SWEEP_RUN_KIND
from trainers.artifacts import CONFIG_ARTIFACT, PREDICTIONS_ARTIFACT, RESULT_FILE


class TrackingError(RuntimeError):
    """The tracking store cannot be used; one line naming the URI and the fix."""


def redact(uri: str) -> str:
    """``http://user:secret@host`` → ``http://user:***@host``: URIs are printed, secrets are not."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before Ray starts, if the tracking store cannot be reached or written."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            sqlite3.connect(path).close()
        except (OSError, sqlite3.Error) as error:
            raise TrackingError(f"tracking URI {uri}: cannot open the SQLite store ({error}); "
                                "pass --tracking-uri with a writable path") from None
        return
    if parsed.scheme in ("http", "https"):
        health = f"{parsed.scheme}://{parsed.hostname}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}{parsed.path.rstrip('/')}/health"
        try:
            urllib.request.urlopen(health, timeout=timeout_s).close()
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TrackingError(f"tracking URI {redact(uri)} is unreachable ({reason}); start the "
                                "MLflow server or pass --tracking-uri") from None
        return
    if parsed.scheme not in ("file", ""):
        raise TrackingError(f"tracking URI {redact(uri)}: unsupported scheme '{parsed.scheme}'; use "
                            "sqlite:///path.db or http://host:port")


def check_resumable(uri: str, sweep: str) -> None:
    """For ``--resume``: the sweep must already have its parent run in this tracking store."""
    # A store never used before says it is creating its tables: noise around a one-line error.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is not None and client.search_runs(
            [experiment.experiment_id], f"tags.kind = '{SWEEP_RUN_KIND}'", max_results=1):
        return
    known = sorted(e.name for e in client.search_experiments() if e.name != "Default")
    raise TrackingError(f"--resume: no sweep {sweep!r} in {redact(uri)} (known: {', '.join(known) or 'none'}); "
                        "check --name / the space's name, or drop --resume to start it")


def ensure_experiment(client: MlflowClient, sweep: str, artifact_root: Path | None) -> str:
    experiment = client.get_experiment_by_name(sweep)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = (artifact_root / sweep).resolve().as_uri() if artifact_root else None
    return client.create_experiment(sweep, artifact_location=location)


def ensure_parent_run(client: MlflowClient, experiment_id: str, sweep: str, tags: dict[str, str]) -> str:
    found = client.search_runs([experiment_id], f"tags.kind = '{SWEEP_RUN_KIND}'", max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(experiment_id, run_name=sweep,
                                   tags={"kind": SWEEP_RUN_KIND, "sweep": sweep}).info.run_id
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return run_id


def trial_runs(client: MlflowClient, experiment_id: str) -> dict[str, object]:
    """Child runs of the experiment by ``trial_key`` (the first one found wins)."""
    runs = {}
    for run in client.search_runs([experiment_id], "tags.trial_key != ''", max_results=5000):
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
    tags = {**trial.tags, "sweep": sweep, "mlflow.parentRunId": parent_id}
    run_id = client.create_run(experiment_id, run_name=trial.name, tags=tags).info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in _params(trial).items()])
    existing[trial.key] = client.get_run(run_id)
    return run_id


def adopt_finished(client: MlflowClient, experiment_id: str, parent_id: str, sweep: str,
                   trial: PlannedTrial, storage: Path, existing: dict[str, object]) -> str:
    """Make sure a finished trial has a FINISHED run in this experiment, from its folder."""
    folder = model_dir(storage, trial.key)
    result = json.loads((folder / RESULT_FILE).read_text())
    run = existing.get(trial.key)
    if run is not None and run.info.status == "FINISHED":
        return run.info.run_id
    run_id = ensure_trial_run(client, experiment_id, parent_id, sweep, trial, existing)
    if result["run_id"] != run_id:
        client.set_tag(run_id, "reused_from", result["run_id"])
    logged = {m.step for m in client.get_metric_history(run_id, "val_accuracy")}
    metrics = [Metric(k, v, 0, epoch) for epoch, row in enumerate(result["history"], start=1)
               if epoch not in logged for k, v in row.items()]
    metrics += [Metric(k, v, 0, 0) for k, v in result["final"].items()]
    for start in range(0, len(metrics), 900):  # MLflow caps a batch at 1,000 metrics
        client.log_batch(run_id, metrics=metrics[start:start + 900])
    client.log_artifact(run_id, str(folder / CONFIG_ARTIFACT))
    client.log_artifact(run_id, str(folder / Path(PREDICTIONS_ARTIFACT).name),
                        artifact_path=str(Path(PREDICTIONS_ARTIFACT).parent))
    client.set_tag(run_id, "model_dir", str(folder))
    client.set_terminated(run_id, "FINISHED")
    existing[trial.key] = client.get_run(run_id)
    return run_id


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


def _params(trial: PlannedTrial) -> dict[str, str]:
    """The resolved config, flattened, without machine-specific paths."""
    fields = trial.config.to_dict()
    fields.pop("teacher_dirs")
    data = fields.pop("data")
    flat = {k: str(v) for k, v in fields.items()}
    flat.update({f"data.{k}": str(v) for k, v in data.items()})
    return flat
