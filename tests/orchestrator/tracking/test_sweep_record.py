"""The sweep's parent run holds the space as written and resolved, the plan and the report."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import build_plan
from orchestrator.spec.space import parse_spec
from orchestrator.tracking import runs
from orchestrator.tracking.sweep_record import log_report, log_sweep_inputs


def test_the_parent_run_holds_the_space_the_plan_and_the_report(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    raw = {"name": "s", "seeds": [0], "grid": [{"methods": ["kd"], "teachers": [["bert"]],
                                                "students": ["tinybert"]}]}
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(raw))
    spec = parse_spec(raw, str(space))
    plan = build_plan(spec, data_fingerprint="f", storage=tmp_path / "store",
                      models=resolve_models(spec, space))
    experiment = runs.ensure_experiment(client, "s", tmp_path / "artifacts")
    parent = runs.ensure_parent_run(client, experiment, "s", {})
    log_sweep_inputs(client, parent, space, spec, plan)
    report = tmp_path / "report"
    (report / "plots").mkdir(parents=True)
    (report / "table1.md").write_text("| Method |")
    (report / "plots" / "accuracy.png").write_bytes(b"png")
    assert log_report(client, "s", report) and not log_report(client, "unknown", report)
    listed = {a.path for a in client.list_artifacts(parent)}
    assert listed == {"space", "plan.json", "report"}
    assert {a.path for a in client.list_artifacts(parent, "space")} == {"space/space.yaml",
                                                                         "space/resolved.yaml"}
    assert {a.path for a in client.list_artifacts(parent, "report")} == {"report/table1.md",
                                                                          "report/plots"}
    recorded = json.loads(open(client.download_artifacts(parent, "plan.json", str(tmp_path))).read())
    names = [t["name"] for stage in recorded["stages"].values() for t in stage]
    assert names == [t.name for t in plan.trials]
    assert recorded["stages"]["2"][0]["config"]["method"] == "kd"
