"""Snapshot and restore of torch's random generators (CPU and every initialised CUDA device).

Used to resume a trial bit-for-bit and to replay one forward pass's dropout mask (MetaDistil).
"""

from __future__ import annotations

import torch


def cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


def get_state() -> list[torch.Tensor]:
    return [torch.get_rng_state()] + [torch.cuda.get_rng_state(d) for d in cuda_devices()]


def set_state(state: list[torch.Tensor]) -> None:
    torch.set_rng_state(state[0].cpu())
    for device, device_state in zip(cuda_devices(), state[1:]):
        torch.cuda.set_rng_state(device_state.cpu(), device)
