"""The real pretrained checkpoint through the real sweep, in every form a space may name it:
``minilm`` (the registry: offline, the installed copy), a folder relative to the space file (the
sweep runs from another folder, and so do Ray's workers), and an ``org/name`` hub id found in the
Hugging Face cache; students cut from them (``minilm@2``, ``org/name@2``); KD and MetaDistil; real
Ray, real MLflow. A pruned student as a space writes it (``minilm@2%50``: the cut, then half its
heads and neurons removed). The same sweep holds trials that teach trials: a teacher-assistant chain under
MetaDistil (MiniLM → MiniLM@2 → MiniLM@1, the assistant a trainable teacher of the last hop) beside
the direct MiniLM → MiniLM@1, and a born-again MiniLM → MiniLM (one sweep, for the suite's time)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.sweeps import run_sweep, tracking_uri
from trainers.models.refs import packaged_dir

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

HUB_ID = "test-org/minilm-cached"
SPACE = {
    "name": "pretrained",
    "seeds": [0],
    "data": {"train_size": 300, "quiz_size": 20, "test_size": 200, "max_length": 32},
    "train": {"epochs": 1, "lr": 1.0e-4, "pilot_lr": 1.0e-4, "teacher_lr": 1.0e-5, "batch_size": 32},
    # Each form twice: the registry's minilm teaches and is cut (minilm@2), the folder (whose short
    # name collides with the registry's) teaches, the hub id is cut into a student. Then MiniLM@2 is
    # an assistant between MiniLM and MiniLM@1, MiniLM a born-again student, and two MiniLM@1 a
    # mutual-learning cohort (one trial, two models), and MiniLM@2 pruned to half its heads and
    # neurons a KD student: 10 runs, 3 stages.
    "grid": [{"methods": ["kd"], "teachers": [["models/minilm"]], "students": [f"{HUB_ID}@2"]},
             {"methods": ["metadistil"], "teachers": [["minilm"]], "students": ["minilm@1"],
              "assistants": [[], ["minilm@2"]]},
             {"methods": ["kd"], "teachers": [["minilm"]], "students": ["minilm", "minilm@2%50"]},
             {"methods": ["mutual"], "students": ["minilm@1"], "peers": [["minilm@1"]]}],
}
COHORT = ("minilm@1+minilm@1_m1__mutual__seed0", "minilm@1+minilm@1_m2__mutual__seed0")
RUNS = {  # run name → (stage, teachers tag, assistants tag)
    "minilm-2__finetune__seed0": ("1", "", None),
    "minilm-cached@2_from_minilm-2__kd__seed0": ("2", "minilm-2", None),
    "minilm__finetune__seed0": ("1", "", None),
    "minilm@2_from_minilm__metadistil__seed0": ("2", "minilm", None),
    "minilm@1_from_minilm__metadistil__seed0": ("2", "minilm", None),
    "minilm@1_from_minilm_via_minilm@2__metadistil__seed0": ("3", "minilm", "minilm@2"),
    "minilm_from_minilm__kd__seed0": ("2", "minilm", None),
    "minilm@2%50_from_minilm__kd__seed0": ("2", "minilm", None),
    COHORT[0]: ("1", "", None),
    COHORT[1]: ("1", "", None),
}


def _hub_cache(home: Path, source: Path) -> None:
    """The layout huggingface_hub leaves after a download: refs/main → snapshots/<revision>/."""
    revision = "0" * 40
    repo = home / "hub" / f"models--{HUB_ID.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for file in source.iterdir():
        if file.is_file():
            (snapshot / file.name).symlink_to(file)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pretrained")
    minilm = packaged_dir("minilm")
    folder = workdir / "models" / "minilm"  # its short name collides with the registry's minilm
    folder.mkdir(parents=True)
    for file in minilm.iterdir():
        if file.is_file():
            (folder / file.name).symlink_to(file)
    _hub_cache(workdir / "hf", minilm)
    (workdir / "space.yaml").write_text(yaml.safe_dump(SPACE))
    done, _ = run_sweep(workdir, env={"HF_HOME": str(workdir / "hf")})
    assert done.returncode == 0, done.stdout[-4000:]
    return workdir, done


def _trial_runs(workdir: Path) -> dict:
    """The sweep's trial runs by run name."""
    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name("pretrained")
    found = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    return {r.info.run_name: r for r in found}


def test_every_form_of_the_name_trains_and_is_labelled_short(pretrained):
    workdir, done = pretrained
    runs = _trial_runs(workdir)
    assert sorted(runs) == sorted(RUNS)
    assert "10 trials: 10 trained, 0 reused, 0 failed" in done.stdout
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        student = run.data.tags["student"]
        model = name.split("_from_")[0].split("__")[0].split("+")[0]
        assert "/" not in student and student == model
        if "%" in name.split("_from_")[0]:  # cut to layers 0 and 5, then half of each pruned
            assert run.data.params["student_kept_layers"] == "0,5"
            assert run.data.params["student_pruned"] == ("6/12 heads, 768/1536 neurons in each of 2 "
                                                         "layers (michel2019-taylor, 256 examples)")
            assert len(run.data.params["student_kept_heads"].split()) == 2
            # MiniLM@2 less, per layer, 6 heads' Q, K, V rows (3 × (192 × 384 + 192)) and output
            # columns (192 × 384), 768 neurons' rows (768 × 384 + 768) and columns (768 × 384)
            assert run.data.metrics["student_params"] == 15_616_130 - 2 * 886_080
            record = MlflowClient(tracking_uri(workdir)).download_artifacts(run.info.run_id, "pruning.json")
            assert [len(h) for h in json.loads(Path(record).read_text())["heads"]] == [6, 6]
        elif "@2" in name.split("_from_")[0]:  # a cut student: 2 of the 6 pretrained layers
            assert run.data.params["student_kept_layers"] == "0,5"
            assert run.data.metrics["student_params"] == 15_616_130
            assert run.data.metrics["teacher_params"] == 22_713_986
        elif "@1" in name.split("_from_")[0]:
            assert run.data.metrics["student_params"] == 13_841_666
        else:
            assert run.data.metrics["student_params"] == 22_713_986
    sources = {name: run.data.params["student"] for name, run in runs.items()}
    assert sources["minilm-cached@2_from_minilm-2__kd__seed0"] == f"{HUB_ID}@2"
    assert sources["minilm-2__finetune__seed0"] == str((workdir / "models" / "minilm").resolve())
    assert sources["minilm__finetune__seed0"] == str(packaged_dir("minilm"))
    meta = runs["minilm@2_from_minilm__metadistil__seed0"]
    assert meta.data.tags["teachers"] == "minilm" and "quiz_loss" in meta.data.metrics


def test_each_hop_of_a_chain_trains_after_its_teacher(pretrained):
    workdir, _ = pretrained
    runs = _trial_runs(workdir)
    for name, (stage, teachers, assistants) in RUNS.items():
        tags = runs[name].data.tags
        assert (tags["stage"], tags["teachers"], tags.get("assistants")) == (stage, teachers, assistants)
    chain = runs["minilm@1_from_minilm_via_minilm@2__metadistil__seed0"]
    # The last hop learnt from the assistant's checkpoint (MiniLM@2, not MiniLM) under MetaDistil.
    assert chain.data.metrics["teacher_params"] == 15_616_130 and "quiz_loss" in chain.data.metrics
    first, second = (runs[name] for name in COHORT)
    assert [r.data.tags["member"] for r in (first, second)] == ["1", "2"]
    assert first.data.tags["cohort"] == second.data.tags["cohort"] == "minilm@1+minilm@1"
    # One trial trained both (the second's run is closed from the folder the first's worker wrote),
    # into two different models: each member starts from its own head and learns its own way.
    assert "peer1_train_loss" in first.data.metrics
    assert first.data.tags["trial_key"] != second.data.tags["trial_key"]
    assert first.data.metrics["student_params"] == second.data.metrics["student_params"] == 13_841_666
    models = workdir / "store" / "models"
    predictions = [np.loadtxt(models / r.data.tags["trial_key"] / "test_predictions.csv",
                              delimiter=",", skiprows=1)[:, 3] for r in (first, second)]
    assert not np.array_equal(*predictions)
    born_again = runs["minilm_from_minilm__kd__seed0"]
    assert born_again.data.tags["trial_key"] != runs["minilm__finetune__seed0"].data.tags["trial_key"]
    assert born_again.data.metrics["teacher_params"] == 22_713_986


def test_pretrained_teachers_learn_the_task(pretrained):
    """300 phrases, one epoch: the pretrained teachers are already well above the majority class
    (50.9 % of GLUE dev), which no tiny preset reaches at this size."""
    workdir, _ = pretrained
    results = [json.loads(p.read_text()) for p in (workdir / "store" / "models").glob("*/result.json")]
    teachers = [r for r in results if "__finetune__" in r["name"]]
    assert len(teachers) == 2
    for result in teachers:
        assert result["history"][-1]["val_accuracy"] > 0.6, result["name"]
    cut = json.loads(next((workdir / "store" / "models").glob("*/model/config.json")).read_text())
    assert "num_hidden_layers" in cut


def test_the_report_and_predict_name_them_short(pretrained, capsys):
    from orchestrator.serve import predict

    workdir, _ = pretrained
    table1 = (workdir / "report" / "table1.md").read_text()
    assert "MiniLM (teacher)" in table1 and "KD minilm-2→minilm-cached@2" in table1
    assert "| KD MiniLM→MiniLM |" in table1  # born-again
    table4 = (workdir / "report" / "table4.md").read_text()
    assert "| MetaDistil MiniLM→MiniLM@1 |" in table4 and "| via MiniLM@2 |" in table4
    significance = (workdir / "report" / "significance.md").read_text()
    chain = next(line for line in significance.splitlines()
                 if line.startswith("| MetaDistil MiniLM→MiniLM@2→MiniLM@1 |"))
    assert "| MetaDistil MiniLM→MiniLM@1 |" in chain  # its second baseline: the direct distillation
    assert "| Holm |" in significance and "| Holm (bootstrap) |" in significance
    table5 = (workdir / "report" / "table5.md").read_text()
    for member in (1, 2):
        assert f"| DML, member {member} of MiniLM@1+MiniLM@1 |" in table5
    assert predict.main(["NLP is fun.", "--sweep", "pretrained",
                         "--tracking-uri", tracking_uri(workdir)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if " ms" in line and not line.startswith("  ·")]  # fp32
    assert len(rows) == 10
    # Each with its int8 variant answering from the file its trial saved (the pruned student's too).
    quantized = [line for line in out.splitlines() if line.startswith("  · int8")]
    assert len(quantized) == 10 and all(("positive" in r) != ("negative" in r) for r in quantized), out
    for label in ("MetaDistil MiniLM→MiniLM@2→MiniLM@1", "MetaDistil MiniLM→MiniLM@1", "KD MiniLM→MiniLM",
                  "KD MiniLM→MiniLM@2%50",
                  "DML MiniLM@1 (member 1 of MiniLM@1+MiniLM@1)",
                  "DML MiniLM@1 (member 2 of MiniLM@1+MiniLM@1)"):
        assert f"{label} " in out, out
