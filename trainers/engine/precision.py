"""The arithmetic a trial trains and evaluates in (``train.precision``), one switch for the loop,
the evaluation and the step benchmark alike, so a benchmark measures what training runs.

- ``fp32``: IEEE float32 everywhere (the default; the exactness tests run here or in float64).
- ``tf32``: float32 tensors, but CUDA matmuls round their inputs to TensorFloat-32 (10-bit
  mantissa) on Ampere and later GPUs. A CPU has no TF32 unit: there ``tf32`` computes exactly as
  ``fp32`` (the oneDNN CPU settings are left alone), so a space written for a GPU runs unchanged on
  a laptop, with the same numbers as ``fp32``.
- ``bf16``: ``torch.autocast`` to bfloat16 on the trial's device type: matmuls and the ops
  autocast lists run in bfloat16 (8-bit mantissa), parameters, gradients and optimizer states stay
  float32, and losses are taken on float32 logits. bfloat16 keeps float32's exponent range, so no
  loss scaling is needed.

The TF32 switch is process-wide in PyTorch; :func:`applied` sets it for the trial and restores
what was there, so a Ray worker process reused by the next trial starts from its own setting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from trainers.config import PRECISIONS


@contextlib.contextmanager
def applied(precision: str, device: torch.device) -> Iterator[None]:
    """Run the body in ``precision`` on ``device`` (see the module's docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}")
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32" if precision == "tf32" else "ieee"
    try:
        with autocast(precision, device):
            yield
    finally:
        matmul.fp32_precision = before


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``bf16``; nothing for the float32 precisions."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32: bfloat16 logits from autocast are raised for the loss, float32
    and the exactness tests' float64 pass unchanged (no copy)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
