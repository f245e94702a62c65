"""What a model costs to serve, measured one way for every model: size on disk, CPU latency at batch
1 (median and p95) and throughput at batch 32.

How each figure is taken (:func:`measure`):

- ``size_mb``: bytes ÷ 10⁶ of the weights file the model would be shipped as, written to a scratch
  folder: for an fp32 model its safetensors file (``safetensors.torch.save_model``, the tensors
  ``save_pretrained`` writes), for an int8 variant ``model.int8.safetensors`` (``trainers.models.quantize``:
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

- ``traced=True``: each model is timed as its ``torch.jit.trace`` (a TorchScript graph run without
  Python), as a serving process that exports its model would run it. At batch 1 a BERT-family
  forward in eager PyTorch pays about 2 ms (measured here on MiniLM and MiniLM@2) of Python module
  calls that no kernel change touches, so int8's gain shows less eagerly (int8÷fp32 at batch 1:
  0.57 and 0.62 eagerly, 0.40 and 0.41 traced, one side-by-side run on this shared machine). Both
  are honest figures of different serving set-ups; ``Cost.traced`` says which one a figure is.

Everything runs under ``torch.inference_mode`` (no autograd bookkeeping) with the model in eval mode
(no dropout), single sentences without segment ids, as ``orchestrator.serve.predict`` asks a model. The
thread count is pinned with ``torch.set_num_threads(threads)`` for the measurement, written into the
result, and the caller's count is restored afterwards.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_model
from transformers import PreTrainedTokenizerBase

from trainers.errors import UserError
from trainers.models.quantize import int8_linears, save_int8

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
    traced: bool = False  # timed as a TorchScript trace, without Python's per-call overhead

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
            threads: int = 1, rounds: int = 1, max_length: int = MAX_LENGTH, traced: bool = False) -> Cost:
    """Size, latency at batch 1 and throughput at batch 32 of ``model`` on ``sentences`` (at least
    32 of them, the same list for every model compared), on ``threads`` CPU threads."""
    return measure_side_by_side({"model": model}, tokenizer, sentences, threads=threads, rounds=rounds,
                                max_length=max_length, traced=traced)["model"]


def measure_side_by_side(models: dict[str, torch.nn.Module], tokenizer: PreTrainedTokenizerBase,
                         sentences: Sequence[str], *, threads: int = 1, rounds: int = 1,
                         max_length: int = MAX_LENGTH, traced: bool = False) -> dict[str, Cost]:
    """:func:`measure` of several models sharing one tokenizer (an fp32 model and its int8
    variant), interleaved: each sentence, then each batch, is run by every model in turn, so that
    a load another process puts on the machine falls on all of them alike. ``traced``: time each
    model's TorchScript trace instead of the model (see the module's notes)."""
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
            runners = {}
            for name, model in models.items():
                model.eval()
                runners[name] = _trace(model, singles, batches, name) if traced else model
                for inputs in (singles * WARMUP)[:WARMUP]:
                    runners[name](**inputs)
            for _ in range(rounds):
                for inputs in singles:
                    for name, runner in runners.items():
                        latencies[name].append(_seconds(runner, inputs))
            for r in range(rounds):
                for inputs in batches:
                    for name, runner in runners.items():
                        batch_seconds[name][r] += _seconds(runner, inputs)
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
                           threads=threads, traced=traced)
    return costs


def _trace(model: torch.nn.Module, singles: list, batches: list, name: str) -> torch.nn.Module:
    """``model`` traced by ``torch.jit.trace`` on the first padded batch (so that the attention
    mask's path is recorded; tuple outputs: the config's ``return_dict`` off while tracing), checked
    to give the model's logits on the shortest and the longest sentence alone and on the last batch:
    a trace that fixed a shape or dropped the mask is refused."""
    config = getattr(model, "config", None)
    return_dict = getattr(config, "return_dict", None)
    if config is not None:
        config.return_dict = False
    try:
        with warnings.catch_warnings():  # TracerWarnings: what they warn of is checked below
            warnings.simplefilter("ignore")
            trace = torch.jit.trace(model, example_kwarg_inputs=dict(batches[0]), strict=False)
    finally:
        if config is not None:
            config.return_dict = return_dict
    lengths = [inputs["input_ids"].shape[1] for inputs in singles]
    for inputs in (singles[int(np.argmin(lengths))], singles[int(np.argmax(lengths))], batches[-1]):
        if not torch.allclose(trace(**inputs)[0], model(**inputs)[0], atol=1e-4):
            raise CostError(f"model {name!r}: its TorchScript trace answers otherwise than the model "
                            "on other inputs; measure it untraced (traced=False)")
    return trace


def _seconds(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    started = time.perf_counter()
    model(**inputs)
    return time.perf_counter() - started
