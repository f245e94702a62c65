"""torch's generators snapshotted and restored: the same state gives the same stream, which is
what lets a resumed trial continue bit for bit and MetaDistil replay one pass's dropout mask."""

from __future__ import annotations

import torch

from trainers.engine import rng


def test_a_restored_state_draws_the_same_stream():
    torch.manual_seed(3)
    state = rng.get_state()
    drawn = torch.rand(5), torch.randn(3), torch.randint(0, 100, (4,))
    torch.rand(7)  # the stream moves on
    rng.set_state(state)
    again = torch.rand(5), torch.randn(3), torch.randint(0, 100, (4,))
    assert all(torch.equal(a, b) for a, b in zip(drawn, again))


def test_the_snapshot_is_a_copy_not_a_view_of_the_live_generator():
    state = rng.get_state()
    saved = [s.clone() for s in state]
    torch.rand(10)
    assert all(torch.equal(a, b) for a, b in zip(state, saved))


def test_a_dropout_mask_is_replayed():
    layer = torch.nn.Dropout(0.5).train()
    x = torch.ones(64)
    state = rng.get_state()
    first = layer(x)
    rng.set_state(state)
    assert torch.equal(layer(x), first)
    assert not torch.equal(layer(x), first)  # a new draw: another mask (p = 2^-64 of a clash)


def test_only_initialised_cuda_devices_are_saved():
    if not torch.cuda.is_initialized():  # no CUDA call yet (or no GPU): the CPU generator alone
        assert rng.cuda_devices() == []
    assert len(rng.get_state()) == 1 + len(rng.cuda_devices())
