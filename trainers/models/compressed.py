"""What every finished model adds to its final metrics: its int8 variant's test scores and the cost
of both, fp32 and int8 (issue 29, items 2 and 3).

- ``test_<metric>_int8``: the int8 variant (``trainers.models.quantize.int8``) scored on the same test
  examples, with the same encoding and the same metrics as the fp32 model's ``test_<metric>``
  (SST-2: ``test_accuracy_int8``), so the two are paired; its per-example predictions
  (:attr:`Compressed.predictions`) are written beside the fp32 model's
  (``trainers.record.artifacts.INT8_PREDICTIONS_ARTIFACT``), so that a report can test the difference
  example by example.
- ``size_mb``, ``latency_ms_p50``, ``latency_ms_p95``, ``throughput_b32`` and the same with
  ``_int8``: ``trainers.models.cost.measure_side_by_side`` of the fp32 model and its int8 variant on the
  CPU, ``COST_THREADS`` thread, on the first ``COST_SENTENCES`` test sentences (fewer test
  examples are cycled up to one batch of 32), measured the same way for every model whatever
  resources its trial had, eagerly (not traced: ``trainers/models/cost.py`` says what that changes), so
  that the figures of two runs compare; ``cost_threads`` records the thread count. The names are
  ``trainers.models.cost_names``' (torch-free, for the report); ``TIMED`` there: the timings.
  A sentence-pair task's cost is its first sentences alone: the figure compares models, it is not
  the task's exact input.

A model trained on a GPU is copied to the CPU for both (the int8 kernels are CPU kernels); the
trained model itself is not moved. The int8 variant itself (:attr:`Compressed.model`) is what the
worker saves as ``model.int8.safetensors`` beside the fp32 weights, so that predict and the demo
answer with the very model these scores are of.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.data import tasks
from trainers.data.glue import Examples
from trainers.data.metrics import scores
from trainers.engine.evaluate import predict
from trainers.models.build import Built
from trainers.models.cost import BATCH, measure_side_by_side
from trainers.models.cost_names import INT8, THREADS
from trainers.models.quantize import int8

COST_SENTENCES = 128
COST_THREADS = 1
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Compressed:
    """What :func:`int8_and_cost` adds to a finished model: final ``metrics`` and the int8
    variant's per-example test ``predictions`` and ``prob_positive``, in the test examples' order,
    and the int8 ``model`` they came from (on the CPU, in eval mode)."""

    metrics: dict[str, float]
    predictions: np.ndarray
    prob_positive: np.ndarray
    model: torch.nn.Module


def int8_and_cost(built: Built, test: Examples, task: str, *, max_length: int, cache_dir: Path,
                  batch_size: int) -> Compressed:
    """The int8 test scores and predictions and the cost metrics of the trained ``built`` (see the
    module's notes)."""
    on_cpu = all(p.device.type == "cpu" for p in built.model.parameters())
    model = built.model if on_cpu else copy.deepcopy(built.model).to(CPU)
    quantized = int8(model, type(model).__name__)
    encoded = built.encode(test, max_length, cache_dir)
    predictions, prob_positive = predict(quantized, encoded, pad_id=built.tokenizer.pad_token_id,
                                         batch_size=batch_size, device=CPU)
    tested = scores(tasks.get(task).metrics, predictions, np.asarray(test.labels), "test")
    sentences = list(test.sentences[:COST_SENTENCES])
    sentences = (sentences * -(-BATCH // len(sentences)))[:max(BATCH, len(sentences))]
    costs = measure_side_by_side({"fp32": model, "int8": quantized}, built.tokenizer, sentences,
                                 threads=COST_THREADS, max_length=max_length)
    metrics = {**{f"{key}{INT8}": value for key, value in tested.items()}, **costs["fp32"].metrics(),
               **costs["int8"].metrics(INT8), THREADS: float(COST_THREADS)}
    return Compressed(metrics, predictions, prob_positive, quantized)
