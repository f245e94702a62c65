"""The few collective operations the loops need, as no-ops when a trial runs in one process.

Ray Train starts the process group (gloo on CPU, NCCL on GPU) before the loop runs; the loops
shard each epoch's examples by rank and average gradients themselves. Explicit all-reduces, rather
than DDP, because MetaDistil takes gradients with ``torch.autograd.grad`` and ``torch.func``, which
DDP's backward hooks do not see.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_mean(tensors: Sequence[torch.Tensor]) -> None:
    """Average ``tensors`` in place across workers, in one flat bucket (one collective call)."""
    _, size = world()
    if size == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients(parameters: Sequence[torch.nn.Parameter]) -> None:
    all_reduce_mean([p.grad for p in parameters if p.grad is not None])


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Give every worker rank 0's weights (a fresh classifier head is initialised per process)."""
    _, size = world()
    if size == 1:
        return
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)
