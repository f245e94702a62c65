"""An Optuna search for real: Tune's OptunaSearch suggests the configurations while Ray Tune runs
them as Ray Train trials into MLflow, as a user runs it; the report writes the best one's space
with the suggested values; the same command with a larger ``num_samples`` reuses every recorded
suggestion and asks Optuna only for the new one."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.sweeps import run_sweep, tracking_uri
from trainers.record.layout import StorageLayout

pytestmark = pytest.mark.system  # starts Ray: `make test-fast` skips it

# Fine-tune suggestions of lr and warmup_ratio in one stage (no teacher: a stage of its own would
# only add its start-up), one at a time so that Optuna hears each result before the next one.
OPTUNA_SPACE = {
    "name": "optuna",
    "seeds": [0],
    "data": {"train_size": 200, "quiz_size": 20, "test_size": 50, "max_length": 32},
    "train": {"epochs": 2, "batch_size": 32, "lr": {"loguniform": [1.0e-5, 1.0e-2]},
              "warmup_ratio": {"uniform": [0.0, 0.3]}},
    "search": {"algorithm": "optuna", "num_samples": 2, "seed": 3, "max_concurrent": 1},
    "grid": [{"methods": ["finetune"], "students": ["tinybert"]}],
}


def test_optuna_suggests_records_reports_and_a_larger_search_asks_only_for_more(tmp_path):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(OPTUNA_SPACE))
    layout = StorageLayout(tmp_path / "store")
    first, _ = run_sweep(tmp_path)
    assert first.returncode == 0, first.stdout[-4000:]
    assert "stage 1: 2 Optuna suggestion(s) for 1 configuration(s)" in first.stdout
    assert "2 trials: 2 trained, 0 reused, 0 failed" in first.stdout, first.stdout[-3000:]
    (recorded,) = json.loads(layout.suggestions_file("optuna").read_text()).values()
    assert [s["sample"] for s in recorded] == [0, 1]

    client = MlflowClient(tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name("optuna").experiment_id
    runs = client.search_runs([experiment], "tags.method = 'finetune'")
    by_sample = {int(r.data.tags["sample"]): r for r in runs}
    assert sorted(by_sample) == [0, 1] and all(r.info.status == "FINISHED" for r in runs)
    for suggestion in recorded:
        run = by_sample[suggestion["sample"]]
        assert json.loads(run.data.tags["searched"]) == suggestion["values"]
        assert float(run.data.params["lr"]) == pytest.approx(suggestion["values"]["lr"], rel=1e-12)
        assert run.info.run_name == f"tinybert__finetune__s{suggestion['sample']}__seed0"

    # The report's best: the run with the higher val_accuracy, or s0 on a tie (ranked as logged).
    best = yaml.safe_load((tmp_path / "report" / "best_tinybert__finetune.yaml").read_text())
    assert best["seeds"] == [0, 1, 2, 3, 4] and "search" not in best
    assert {best["train"]["lr"], best["train"]["warmup_ratio"]} <= {
        v for s in recorded for v in (s["values"]["lr"], s["values"]["warmup_ratio"])}
    assert any(s["values"] == {"lr": best["train"]["lr"], "warmup_ratio": best["train"]["warmup_ratio"]}
               for s in recorded)

    grown = {**OPTUNA_SPACE, "search": {**OPTUNA_SPACE["search"], "num_samples": 3}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(grown))
    second, _ = run_sweep(tmp_path, "--no-report")
    assert second.returncode == 0, second.stdout[-4000:]
    assert "stage 1: 1 Optuna suggestion(s) for 1 configuration(s)" in second.stdout
    assert "3 trials: 1 trained, 2 reused, 0 failed" in second.stdout, second.stdout[-3000:]
    assert re.search(r"tinybert__finetune__s2__seed0 +trained", second.stdout)
    (again,) = json.loads(layout.suggestions_file("optuna").read_text()).values()
    assert again[:2] == recorded and again[2]["sample"] == 2
    assert len(client.search_runs([experiment], "tags.method = 'finetune'")) == 3
