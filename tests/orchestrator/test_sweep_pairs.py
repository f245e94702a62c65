"""A sentence-pair task as a user runs it: a real MRPC sweep (GLUE's files in the offline data
folder) through ``python -m orchestrator.sweep``, its report, ``predict`` with two sentences, and
the demo's page with two boxes in headless Chromium through real Ray Serve; the search metric it
records and the summary it prints are MRPC's main one, F1.

The teacher (tiny BERT preset) takes segment ids, the student (tiny DistilBERT preset) takes none,
and MetaDistil runs with noise on both sentences: every pair path of ``trainers/data/tokens.py`` runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.serve import predict
from orchestrator.tracking.store import parent_run
from tests.conftest import MRPC
from tests.demos import RunningDemo, answered_rows, ask, post, start_demo, stop_demo
from tests.sweeps import Sweep, run_sweep

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

# Three trials in two stages (the teacher, then a fine-tuned student and MetaDistil), one epoch
# on 200 pairs: about 1.5 minutes on 2 cores.
PAIRS_SPACE = {
    "name": "pairs",
    "seeds": [0],
    "data": {"task": "mrpc", "source": str(MRPC), "train_size": 200, "quiz_size": 16, "test_size": 100,
             "max_length": 64},
    "train": {"epochs": 1, "lr": 5.0e-4, "teacher_lr": 1.0e-4, "pilot_lr": 5.0e-4, "batch_size": 32},
    "teacher_train": {"lr": 1.0e-3},  # the teacher's own fine-tune: its lr only, the rest train's
    "grid": [{"methods": ["finetune"], "students": ["distilbert"]},
             {"methods": ["metadistil"], "teachers": [["bert"]], "students": ["distilbert"],
              "noise_p": [0.2]}],
}
MODELS = ("BERT (teacher)", "DistilBERT (fine-tuned)", "MetaDistil BERT→DistilBERT + noise p=0.2")
LABELS = ("equivalent", "not_equivalent")
BUTTON = "Predict paraphrase"
FIRST, SECOND = "The company said profits rose 5 percent.", "Profits rose 5 percent, the company said."


@pytest.fixture(scope="module")
def paired(tmp_path_factory) -> Sweep:
    workdir = tmp_path_factory.mktemp("pairs")
    (workdir / "space.yaml").write_text(yaml.safe_dump(PAIRS_SPACE))
    first, actors = run_sweep(workdir)
    assert first.returncode == 0, first.stdout[-4000:]
    return Sweep(workdir, first, tuple(actors))


def test_every_trial_trains_and_is_scored_on_pairs(paired):
    client = MlflowClient(paired.tracking_uri)
    experiment = client.get_experiment_by_name("pairs")
    runs = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    assert len(runs) == 3 and {run.data.tags["task"] for run in runs} == {"mrpc"}
    for run in runs:
        assert {"test_f1", "test_accuracy", "val_f1"} <= set(run.data.metrics), run.info.run_name
        assert 0.0 <= run.data.metrics["test_f1"] <= 1.0
    lrs = {run.info.run_name: float(run.data.params["lr"]) for run in runs}
    assert lrs == {"bert__finetune__seed0": 1.0e-3, "distilbert__finetune__seed0": 5.0e-4,
                   "distilbert_from_bert__metadistil__noise0.2__seed0": 5.0e-4}, lrs


def test_the_sweep_searches_by_and_shows_f1_by_default(paired, tmp_path):
    """No search block: the search metric defaults to MRPC's main one, recorded as such (the tag the
    report ranks by, the resolved space), and the summary's columns are F1's."""
    client = MlflowClient(paired.tracking_uri)
    parent = parent_run(client, client.get_experiment_by_name("pairs").experiment_id)
    assert (parent.data.tags["search_metric"], parent.data.tags["search_mode"]) == ("val_f1", "max")
    resolved = client.download_artifacts(parent.info.run_id, "space/resolved.yaml", str(tmp_path))
    assert yaml.safe_load(Path(resolved).read_text())["search"]["metric"] == "val_f1"
    out = paired.first.stdout
    assert f"{'val f1':>8} {'test f1':>8}" in out and "val acc" not in out
    assert len(re.findall(r"^\S+ +trained +[01]\.\d{4} +[01]\.\d{4}$", out, re.M)) == 3, out[-3000:]


def test_the_report_is_headed_by_f1(paired):
    table1 = (paired.workdir / "report" / "table1.md").read_text()
    assert "MRPC" in table1
    header = next(line for line in table1.splitlines() if line.startswith("| Method"))
    assert header.index("F1") < header.index("Accuracy")


def test_predict_answers_a_pair_with_every_model(paired, capsys):
    where = ["--sweep", "pairs", "--tracking-uri", paired.tracking_uri]
    assert predict.main([FIRST, SECOND, *where]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f'sweep \'pairs\' (MRPC): "{FIRST}" / "{SECOND}"')
    rows = [line for line in out.splitlines() if " ms" in line]
    assert [row.split("  ")[0].strip() for row in rows if not row.startswith("  · int8")] == list(MODELS)
    answered = [row for row in rows if "(no file)" not in row]  # an int8 row without its weights
    assert all(sum(f" {label} " in row for label in LABELS) == 1 for row in answered), rows


def test_predict_refuses_one_sentence_for_a_pair_task(paired, capsys):
    assert predict.main([FIRST, "--sweep", "pairs", "--tracking-uri", paired.tracking_uri]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MRPC is a sentence-pair task: give two sentences" in err


@pytest.fixture(scope="module")
def served(paired: Sweep) -> Iterator[RunningDemo]:
    running = start_demo(paired, "pairs")
    yield running
    stop_demo(running)


def test_the_demo_page_asks_every_model_about_two_sentences(served, browser):
    browser.get(served.url)
    assert "MRPC" in browser.title and "sentence pairs" in served.printed()
    ask(browser, BUTTON, FIRST, SECOND)
    rows = answered_rows(browser, 2 * len(MODELS))  # each model's fp32 and int8 rows
    assert [row[0] for row in rows if row[1] == "fp32"] == list(MODELS)
    assert all(row[2] in LABELS for row in rows if row[1] == "fp32"), rows
    ask(browser, BUTTON, FIRST, "  ")  # refused in the page: nothing to ask
    assert browser.find_element("id", "message").text.startswith("The second sentence is empty")


def test_the_demo_server_refuses_one_sentence_for_a_pair_task(served):
    status, body = post(served.url, {"text": FIRST})
    assert status == 400 and "sentence-pair task" in body["error"]
    status, body = post(served.url, {"text": FIRST, "second": SECOND})
    assert status == 200 and [a["model"] for a in body["answers"] if a["variant"] == "fp32"] == list(MODELS)
