"""What the Ray Train worker does besides Ray (``train_loop_per_worker`` itself is Ray glue: the
worker's context, ``ray.train.report`` and its checkpoints; the sweep's system tests run it): the
finished trial's folder, written in one piece, whose model loads with the task's class names and
whose predictions, config and result read back; and the test hook that crashes exactly one worker."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tests.conftest import MRPC, VOCAB
from trainers.config import DataConfig, TrainConfig
from trainers.data.glue import Examples
from trainers.engine.evaluate import predict
from trainers.engine.loop import TrialResult
from trainers.models.build import build_model
from trainers.models.quantize import int8_linears, load_int8
from trainers.record.artifacts import (
    CONFIG_ARTIFACT,
    INT8_PREDICTIONS_ARTIFACT,
    MODEL_ARTIFACT_DIR,
    PREDICTIONS_ARTIFACT,
    RESULT_FILE,
)
from trainers.record.layout import StorageLayout
from trainers.runtime import worker
from trainers.runtime.payload import TrialPayload, TrialResources


def _finished(tmp_path) -> tuple[TrialPayload, TrialResult]:
    config = TrainConfig(method="finetune", student="tinybert",
                         data=DataConfig(source=str(MRPC), task="mrpc"))
    payload = TrialPayload(config=config, key="k123", name="tinybert__finetune__seed0", run_id="r1",
                           tracking_uri="sqlite:///unused.db", resources=TrialResources(),
                           layout=StorageLayout(tmp_path / "store"))
    student = build_model("tinybert", "tiny", train_texts=(), cache_dir=tmp_path, vocab_file=VOCAB)
    test = Examples(("a", "b", "c"), np.array([1, 0, 1]), np.array([17, 4, 9]), ("x", "y", "z"))
    result = TrialResult(history=[{"train_loss": 0.7, "val_accuracy": 0.5}], final={"test_accuracy": 2 / 3},
                         test=test, test_predictions=np.array([1, 1, 1]),
                         test_prob_positive=np.array([0.9, 0.6, 0.51234567]), student=student)
    return payload, result


def test_the_finished_folder_reads_back_whole(tmp_path):
    payload, result = _finished(tmp_path)
    timing = {"entered": 1.0, "imported": 2.0, "finished": 3.0}
    environment = {"env.cpu": "AMD EPYC", "env.cpu_capability": "AVX2"}  # what the worker ran on
    worker.finish(result, payload, None, timing, environment)
    folder = payload.layout.model_dir(payload.key)
    assert payload.layout.is_done(payload.key)
    assert sorted(p.name for p in folder.parent.iterdir()) == [payload.key]  # no staging left beside it
    model = AutoModelForSequenceClassification.from_pretrained(folder / MODEL_ARTIFACT_DIR)
    assert model.config.id2label == {0: "not_equivalent", 1: "equivalent"}  # MRPC's classes
    predictions = pd.read_csv(folder / os.path.basename(PREDICTIONS_ARTIFACT))
    assert predictions.columns.tolist() == ["index", "label", "prediction", "prob_positive"]
    assert predictions["index"].tolist() == [17, 4, 9] and predictions["label"].tolist() == [1, 0, 1]
    assert predictions["prob_positive"].tolist() == [0.9, 0.6, 0.512346]
    assert TrainConfig.from_dict(json.loads((folder / CONFIG_ARTIFACT).read_text())) == payload.config
    summary = json.loads((folder / RESULT_FILE).read_text())
    assert summary == {"key": "k123", "name": payload.name, "run_id": "r1", "final": result.final,
                       "history": result.history, "timing": timing, "environment": environment}


def test_the_finished_model_logs_its_int8_scores_and_cost(tmp_path):
    """Every finished model's final metrics (result.json, then its MLflow run) hold its int8
    variant's test scores, paired with the fp32 ones, and the cost of both variants."""
    payload, result = _finished(tmp_path)
    worker.finish(result, payload, None, {})
    final = json.loads((payload.layout.model_dir(payload.key) / RESULT_FILE).read_text())["final"]
    assert {"test_f1_int8", "test_accuracy_int8"} <= set(final)  # MRPC's metrics
    assert 0 <= final["test_accuracy_int8"] <= 1 and final["cost_threads"] == 1
    for name in ("size_mb", "latency_ms_p50", "latency_ms_p95", "throughput_b32"):
        assert final[name] > 0 and final[f"{name}_int8"] > 0
    assert final["size_mb_int8"] < final["size_mb"] and final["latency_ms_p50"] <= final["latency_ms_p95"]


def test_the_int8_predictions_lie_beside_the_fp32_ones_on_the_same_examples(tmp_path):
    """The int8 variant's per-example predictions, which a report pairs with the fp32 model's: the
    same examples in the same order, and the int8 accuracy logged is theirs."""
    payload, result = _finished(tmp_path)
    worker.finish(result, payload, None, {})
    folder = payload.layout.model_dir(payload.key)
    fp32 = pd.read_csv(folder / os.path.basename(PREDICTIONS_ARTIFACT))
    int8 = pd.read_csv(folder / os.path.basename(INT8_PREDICTIONS_ARTIFACT))
    assert int8.columns.tolist() == fp32.columns.tolist()
    assert int8[["index", "label"]].equals(fp32[["index", "label"]])
    assert set(int8["prediction"]) <= {0, 1} and int8["prob_positive"].between(0, 1).all()
    final = json.loads((folder / RESULT_FILE).read_text())["final"]
    assert final["test_accuracy_int8"] == (int8["prediction"] == int8["label"]).mean()


def test_the_int8_weights_saved_are_the_model_those_predictions_came_from(tmp_path):
    """``model.int8.safetensors`` beside the fp32 weights (what predict and the demo load) answers
    the test examples exactly as the int8 predictions the worker wrote and scored."""
    payload, result = _finished(tmp_path)
    worker.finish(result, payload, None, {})
    folder = payload.layout.model_dir(payload.key)
    loaded = load_int8(folder / MODEL_ARTIFACT_DIR)
    assert int8_linears(loaded)  # the packed int8 layers, not an fp32 model under the int8 name
    encoded = result.student.encode(result.test, payload.config.data.max_length, payload.layout.cache)
    predictions, prob_positive = predict(loaded, encoded, pad_id=result.student.tokenizer.pad_token_id,
                                         batch_size=8, device=torch.device("cpu"))
    written = pd.read_csv(folder / os.path.basename(INT8_PREDICTIONS_ARTIFACT))
    assert predictions.tolist() == written["prediction"].tolist()
    np.testing.assert_allclose(prob_positive, written["prob_positive"], rtol=0, atol=5e-7)  # 6 decimals


def test_a_rerun_replaces_the_folder(tmp_path):
    payload, result = _finished(tmp_path)
    worker.finish(result, payload, None, {})
    stale = payload.layout.model_dir(payload.key) / "stale.txt"
    stale.write_text("from an earlier attempt")
    worker.finish(result, payload, None, {})
    assert payload.layout.is_done(payload.key) and not stale.exists()


class _Crashed(Exception):
    pass


def test_the_fault_hook_crashes_one_worker_once_at_its_epoch(tmp_path, monkeypatch):
    def crash(code):
        raise _Crashed(code)

    monkeypatch.setattr(os, "_exit", crash)  # the real one would end pytest
    marker = tmp_path / "crashed.json"
    worker._maybe_fail(2, "trial-a")  # no hook set
    monkeypatch.setenv(worker.FAULT_EPOCH_ENV, "2")
    monkeypatch.setenv(worker.FAULT_MARKER_ENV, str(marker))
    worker._maybe_fail(1, "trial-a")
    assert not marker.exists()
    with pytest.raises(_Crashed):
        worker._maybe_fail(2, "trial-a")
    assert json.loads(marker.read_text()) == {"trial": "trial-a", "epoch": 2}
    worker._maybe_fail(2, "trial-b")  # the marker exists: no other worker crashes
    assert json.loads(marker.read_text())["trial"] == "trial-a"
