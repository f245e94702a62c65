"""The collectives outside a process group are no-ops (a one-process trial, every test); inside
one they average in place: two gloo processes end with the mean of their tensors, each tensor
keeping its shape, and with rank 0's weights after a broadcast."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.servers import free_ports
from trainers.runtime.distributed import all_reduce_mean, average_gradients, broadcast_parameters, world


def test_one_process_is_rank_0_of_1_and_changes_nothing():
    assert world() == (0, 1)
    tensors = [torch.arange(6.0).reshape(2, 3), torch.tensor([7.0])]
    before = [t.clone() for t in tensors]
    all_reduce_mean(tensors)
    all_reduce_mean([])
    assert all(torch.equal(a, b) for a, b in zip(tensors, before))
    model = torch.nn.Linear(3, 2)
    model(torch.ones(1, 3)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    weights = [p.detach().clone() for p in model.parameters()]
    average_gradients(list(model.parameters()))
    broadcast_parameters(model)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights))


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        tensors = [torch.full((2, 3), float(rank + 1)), torch.arange(4.0) * (rank + 1)]
        all_reduce_mean(tensors)
        torch.manual_seed(rank)  # each process's own fresh head
        model = torch.nn.Linear(3, 2)
        broadcast_parameters(model)
        torch.save({"world": world(), "tensors": tensors, "weights": model.state_dict()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_processes_average_in_place_and_share_rank_0s_weights(tmp_path):
    (port,) = free_ports(1)
    mp.spawn(_worker, args=(port, str(tmp_path / "out")), nprocs=2)
    results = [torch.load(tmp_path / f"out.{rank}") for rank in (0, 1)]
    torch.manual_seed(0)
    rank0 = torch.nn.Linear(3, 2).state_dict()
    for rank, result in enumerate(results):
        assert result["world"] == (rank, 2)
        assert torch.equal(result["tensors"][0], torch.full((2, 3), 1.5))  # (1 + 2) / 2
        assert torch.equal(result["tensors"][1], torch.arange(4.0) * 1.5)
        assert all(torch.equal(result["weights"][k], rank0[k]) for k in rank0)
