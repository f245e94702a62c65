"""A sweep of one planned fine-tune with its MLflow experiment and parent run, for tests that drive
``stages.run_stages`` with a stand-in for Tune's run (no Ray)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator import runs
from orchestrator.plan import Plan, PlannedTrial, build_plan
from orchestrator.preflight import resolve_models
from orchestrator.spec import SweepSpec, parse_spec
from orchestrator.stages import SweepRuns
from trainers.layout import StorageLayout

SPACE = {"name": "t", "seeds": [0], "grid": [{"methods": ["finetune"], "students": ["tinybert"]}]}


@dataclass(frozen=True)
class OneTrial:
    spec: SweepSpec
    layout: StorageLayout
    plan: Plan
    trial: PlannedTrial
    client: MlflowClient
    tracked: SweepRuns


def one_trial_sweep(tmp_path: Path) -> OneTrial:
    """``SPACE`` planned on a storage and a SQLite store under ``tmp_path``."""
    spec = parse_spec(SPACE, "space.yaml")
    layout = StorageLayout(tmp_path / "store")
    plan = build_plan(spec, data_fingerprint="f", storage=layout.root,
                      models=resolve_models(spec, tmp_path / "space.yaml"))
    (trial,) = plan.trials
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = runs.ensure_experiment(client, "t", tmp_path / "artifacts")
    tracked = SweepRuns(client, experiment, runs.ensure_parent_run(client, experiment, "t", {}), "t",
                        client.tracking_uri, runs.trial_runs(client, experiment))
    return OneTrial(spec, layout, plan, trial, client, tracked)
