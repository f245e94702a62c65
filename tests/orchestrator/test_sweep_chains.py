"""Trials that teach trials, through the real sweep (Ray, MLflow, the report, predict): a teacher
assistant chain under MetaDistil (MiniLM → MiniLM@2 → MiniLM@1, the assistant a trainable teacher
of the last hop) beside the direct MiniLM → MiniLM@1, and a born-again MiniLM → MiniLM."""

from __future__ import annotations

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator import predict
from tests.sweeps import run_sweep, tracking_uri

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

SPACE = {
    "name": "chains",
    "seeds": [0],
    "data": {"train_size": 200, "quiz_size": 16, "test_size": 100, "max_length": 32},
    "train": {"epochs": 1, "lr": 1.0e-4, "pilot_lr": 1.0e-4, "teacher_lr": 1.0e-5, "batch_size": 32},
    "grid": [{"methods": ["metadistil"], "teachers": [["minilm"]], "students": ["minilm@1"],
              "assistants": [[], ["minilm@2"]]},
             {"methods": ["kd"], "teachers": [["minilm"]], "students": ["minilm"]}],
}
RUNS = {  # run name → (stage, teachers tag, assistants tag)
    "minilm__finetune__seed0": ("1", "", None),
    "minilm@1_from_minilm__metadistil__seed0": ("2", "minilm", None),
    "minilm@2_from_minilm__metadistil__seed0": ("2", "minilm", None),
    "minilm@1_from_minilm_via_minilm@2__metadistil__seed0": ("3", "minilm", "minilm@2"),
    "minilm_from_minilm__kd__seed0": ("2", "minilm", None),
}


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chains")
    (workdir / "space.yaml").write_text(yaml.safe_dump(SPACE))
    done, _ = run_sweep(workdir)
    assert done.returncode == 0, done.stdout[-4000:]
    return workdir, done


def test_each_hop_trains_once_after_its_teacher(chains):
    workdir, done = chains
    assert "5 trials: 5 trained, 0 reused, 0 failed" in done.stdout
    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name("chains")
    found = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    runs = {r.info.run_name: r for r in found}
    assert sorted(runs) == sorted(RUNS)
    for name, (stage, teachers, assistants) in RUNS.items():
        tags = runs[name].data.tags
        assert runs[name].info.status == "FINISHED"
        assert (tags["stage"], tags["teachers"], tags.get("assistants")) == (stage, teachers, assistants)
    chain = runs["minilm@1_from_minilm_via_minilm@2__metadistil__seed0"]
    assistant = runs["minilm@2_from_minilm__metadistil__seed0"]
    # The last hop learnt from the assistant's checkpoint, and its teacher (the assistant) kept learning.
    assert chain.data.metrics["teacher_params"] == assistant.data.metrics["student_params"]
    assert "quiz_loss" in chain.data.metrics
    born_again = runs["minilm_from_minilm__kd__seed0"]
    assert born_again.data.tags["trial_key"] != runs["minilm__finetune__seed0"].data.tags["trial_key"]
    assert born_again.data.metrics["student_params"] == born_again.data.metrics["teacher_params"]


def test_the_report_pairs_the_chain_with_direct_distillation(chains):
    workdir, _ = chains
    table4 = (workdir / "report" / "table4.md").read_text()
    assert "MetaDistil MiniLM→MiniLM@1" in table4 and "via MiniLM@2" in table4
    significance = (workdir / "report" / "significance.md").read_text()
    chain = next(line for line in significance.splitlines()
                 if line.startswith("| MetaDistil MiniLM→MiniLM@2→MiniLM@1 |"))
    assert "| MetaDistil MiniLM→MiniLM@1 |" in chain  # its second baseline: the direct distillation
    assert "| Holm |" in significance and "| Holm (bootstrap) |" in significance
    assert "| KD MiniLM→MiniLM |" in (workdir / "report" / "table1.md").read_text()  # born-again


def test_predict_answers_with_the_chain_and_the_born_again_student(chains, capsys):
    workdir, _ = chains
    assert predict.main(["NLP is fun.", "--sweep", "chains", "--tracking-uri", tracking_uri(workdir)]) == 0
    out = capsys.readouterr().out
    for label in ("MetaDistil MiniLM→MiniLM@2→MiniLM@1", "MetaDistil MiniLM→MiniLM@1", "KD MiniLM→MiniLM",
                  "MiniLM (teacher)"):
        assert f"{label} " in out, out
