"""A planned sweep with its MLflow experiment and parent run, for tests that drive
``stages.run_stages`` with a stand-in for Tune's run (no Ray); by default one fine-tune."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import Plan, PlannedTrial, build_plan
from orchestrator.run.stages import SweepRuns
from orchestrator.spec.space import SweepSpec, parse_spec
from orchestrator.tracking import runs
from trainers.record.layout import StorageLayout

SPACE = {"name": "t", "seeds": [0], "grid": [{"methods": ["finetune"], "students": ["tinybert"]}]}


@dataclass(frozen=True)
class PlannedSweep:
    spec: SweepSpec
    layout: StorageLayout
    plan: Plan
    client: MlflowClient
    tracked: SweepRuns

    @property
    def trial(self) -> PlannedTrial:
        """The plan's one trial (a plan of several has none)."""
        (trial,) = self.plan.trials
        return trial


def planned_sweep(tmp_path: Path, space: dict[str, Any] = SPACE) -> PlannedSweep:
    """``space`` planned on a storage and a SQLite store under ``tmp_path``."""
    spec = parse_spec(space, "space.yaml")
    layout = StorageLayout(tmp_path / "store")
    plan = build_plan(spec, data_fingerprint="f", storage=layout.root,
                      models=resolve_models(spec, tmp_path / "space.yaml"))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = runs.ensure_experiment(client, space["name"], tmp_path / "artifacts")
    tracked = SweepRuns(client, experiment, runs.ensure_parent_run(client, experiment, space["name"], {}),
                        space["name"], client.tracking_uri, runs.trial_runs(client, experiment))
    return PlannedSweep(spec, layout, plan, client, tracked)
