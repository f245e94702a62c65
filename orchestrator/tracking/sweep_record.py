"""What a sweep's parent run holds beside its tags, so that MLflow alone tells what was run and
what came of it: the search space as written (``space/<file>``) and as resolved after defaults,
recipes and paths (``space/resolved.yaml``), the plan (``plan.json``: every trial's content key,
name, stage, teachers and config, what the rules skipped, a search's draws), and the report
folder (``report/``: tables, significance, plots), logged again whenever the report is rebuilt.

Its artifacts go through ``MlflowClient``'s own calls (``log_artifact``, ``log_text``,
``log_dict``, ``log_artifacts``): which files the parent run holds is this module's concern, and
``orchestrator/tracking/store.py`` holds the plumbing that commands share (the URI, the store check, paging),
which a one-call wrapper there would not add to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from mlflow.tracking import MlflowClient

from orchestrator.plan.planner import Plan
from orchestrator.spec.space import SweepSpec
from orchestrator.tracking.store import parent_run

SPACE_DIR = "space"
PLAN_FILE = "plan.json"
REPORT_DIR = "report"


def log_sweep_inputs(client: MlflowClient, parent_id: str, space: Path, spec: SweepSpec,
                     plan: Plan) -> None:
    """The space file, the resolved space and the plan, as the parent run's artifacts."""
    client.log_artifact(parent_id, str(space), SPACE_DIR)
    resolved = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    client.log_text(parent_id, resolved, f"{SPACE_DIR}/resolved.yaml")
    client.log_dict(parent_id, plan_record(plan), PLAN_FILE)


def plan_record(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON (a search's drawn values as they were drawn)."""
    stages = {str(stage): [{"key": t.key, "name": t.name, "student": t.student,
                            "teachers": list(t.teachers), "teacher_keys": list(t.teacher_keys),
                            "recipe": t.recipe, "sample": t.sample, "searched": dict(t.searched),
                            "config": t.config.to_dict()} for t in trials]
              for stage, trials in sorted(plan.stages.items())}
    record = {"stages": stages, "skipped": plan.skipped, "samples": plan.samples}
    return json.loads(json.dumps(record, default=str))  # tuples, paths, numpy numbers


def log_report(client: MlflowClient, sweep: str, out_dir: Path) -> bool:
    """The report folder as the sweep's parent run's ``report/``; False where the sweep has no
    parent run (a store filled by other means)."""
    experiment = client.get_experiment_by_name(sweep)
    parent = parent_run(client, experiment.experiment_id) if experiment is not None else None
    if parent is None:
        return False
    client.log_artifacts(parent.info.run_id, str(out_dir), REPORT_DIR)
    return True
