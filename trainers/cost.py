"""What a model costs to serve, measured one way for every model: size on disk, CPU latency at batch
1 (median and p95) and throughput at batch 32.

How each figure is taken (:func:`measure`):

- ``size_mb``: bytes ÷ 10⁶ of the weights file the model would be shipped as, written to a scratch
  folder: for an fp32 model its safetensors file (``safetensors.torch.save_model``, the tensors
  ``save_pretrained`` writes), for an int8 variant ``model.int8.safetensors`` (``trainers.quantize``:
  int8 weights, their scales, the fp32 rest). The tokenizer's files are not counted (the same for
  every model of one family).
- latency: each sentence alone (batch 1, its own length, no padding), in the order given, timed
  with ``time.perf_counter`` around the forward pass only; tokenizing happens before the timer
  starts. ``WARMUP`` untimed passes first (one-off allocations, the quantized engine's packing).
  Every sentence is timed ``rounds`` times; the median and the 95th percentile (linear
  interpolation, ``numpy.percentile``) are over all those times.
- throughput: the sentences in consecutive batches of 32, in the order given (a server does not sort
  by length), each padded to its longest sentence; sentences ÷ total forward seconds, ``rounds``
  times over, the best round kept (on a shared machine the fastest round is the one least disturbed
  by others; the latency's median and p95 already show the disturbance).
- models compared are measured side by side (:func:`measure_side_by_side`): every sentence and
  every batch is run by each model in turn, so a shared machine's load falls on all alike.

Everything runs under ``torch.inference_mode`` (no autograd bookkeeping) with the model in eval mode
(no dropout), single sentences without segment ids, as ``orchestrator.predict`` asks a model. The
thread count is pinned with ``torch.set_num_threads(threads)`` for the measurement, written into the
result, and the caller's count is restored afterwards.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_model
from transformers import PreTrainedTokenizerBase

from trainers.errors import UserError
from trainers.quantize import int8_linears, save_int8

BATCH = 32
WARMUP = 8
MAX_LENGTH = 64  # data.max_length's default: what the models were trained on


class CostError(UserError):
    """The cost of a model cannot be measured as asked; the message names why and the fix."""


@dataclass(frozen=True)
class Cost:
    """One model's measured cost; ``threads``: the torch CPU threads it was measured with."""

    size_mb: float
    latency_ms_median: float
    latency_ms_p95: float
    throughput_b32: float  # sentences per second at batch 32
    threads: int

    def metrics(self, suffix: str = "") -> dict[str, float]:
        """The figures under the names a run logs (``latency_ms_p50``…), each with ``suffix``."""
        return {f"size_mb{suffix}": self.size_mb, f"latency_ms_p50{suffix}": self.latency_ms_median,
                f"latency_ms_p95{suffix}": self.latency_ms_p95,
                f"throughput_b32{suffix}": self.throughput_b32}


def size_on_disk_mb(model: torch.nn.Module) -> float:
    """MB (10⁶ bytes) of the file the model is saved as: int8 file for an int8 variant, else
    safetensors."""
    with tempfile.TemporaryDirectory(prefix="cost-") as scratch:
        if int8_linears(model):
            path = save_int8(model, Path(scratch))
        else:
            path = Path(scratch) / "model.safetensors"
            save_model(model, str(path))
        return path.stat().st_size / 1e6


def measure(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, sentences: Sequence[str], *,
            threads: int = 1, rounds: int = 1, max_length: int = MAX_LENGTH) -> Cost:
    """Size, latency at batch 1 and throughput at batch 32 of ``model`` on ``sentences`` (at least
    32 of them, the same list for every model compared), on ``threads`` CPU threads."""
    return measure_side_by_side({"model": model}, tokenizer, sentences, threads=threads, rounds=rounds,
                                max_length=max_length)["model"]


def measure_side_by_side(models: dict[str, torch.nn.Module], tokenizer: PreTrainedTokenizerBase,
                         sentences: Sequence[str], *, threads: int = 1, rounds: int = 1,
                         max_length: int = MAX_LENGTH) -> dict[str, Cost]:
    """:func:`measure` of several models sharing one tokenizer (an fp32 model and its int8
    variant), interleaved: each sentence, then each batch, is run by every model in turn, so that
    a load another process puts on the machine falls on all of them alike."""
    if len(sentences) < BATCH:
        raise CostError(f"{len(sentences)} sentences given; the throughput at batch {BATCH} needs at "
                        f"least {BATCH}: pass more test sentences")
    if threads < 1 or rounds < 1:
        raise CostError(f"threads={threads}, rounds={rounds}: both must be at least 1")
    encode = {"truncation": True, "max_length": max_length, "return_tensors": "pt",
              "return_token_type_ids": False}
    singles = [tokenizer(s, **encode) for s in sentences]
    batches = [tokenizer(list(sentences[i:i + BATCH]), padding=True, **encode)
               for i in range(0, len(sentences) - BATCH + 1, BATCH)]
    before = torch.get_num_threads()
    training = {name: model.training for name, model in models.items()}
    latencies: dict[str, list[float]] = {name: [] for name in models}
    batch_seconds = {name: np.zeros(rounds) for name in models}
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for model in models.values():
                model.eval()
                for inputs in (singles * WARMUP)[:WARMUP]:
                    model(**inputs)
            for _ in range(rounds):
                for inputs in singles:
                    for name, model in models.items():
                        latencies[name].append(_seconds(model, inputs))
            for r in range(rounds):
                for inputs in batches:
                    for name, model in models.items():
                        batch_seconds[name][r] += _seconds(model, inputs)
    finally:
        torch.set_num_threads(before)
        for name, model in models.items():
            model.train(training[name])
    costs = {}
    for name, model in models.items():
        milliseconds = 1000 * np.asarray(latencies[name])
        costs[name] = Cost(size_mb=size_on_disk_mb(model),
                           latency_ms_median=float(statistics.median(milliseconds)),
                           latency_ms_p95=float(np.percentile(milliseconds, 95)),
                           throughput_b32=float(BATCH * len(batches) / batch_seconds[name].min()),
                           threads=threads)
    return costs


def _seconds(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    started = time.perf_counter()
    model(**inputs)
    return time.perf_counter() - started
