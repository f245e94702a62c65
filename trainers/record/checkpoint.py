"""Per-epoch checkpoints that resume a trial exactly, and the final model folder, without pickles.

A checkpoint folder holds ``tensors.safetensors`` (model weights, optimizer moments, RNG states)
and ``state.json`` (epoch, metric history, scheduler counters, optimizer hyper-parameters). Both
load without unpickling anything. Data position needs no saving: an epoch's example order is a
function of (seed, epoch), and checkpoints are taken at epoch boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

TENSORS = "tensors.safetensors"
STATE = "state.json"


def _flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer,
                       tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = optimizer.state_dict()
    scalars: dict[str, Any] = {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_id}.{key}"] = value
    return {"param_groups": state["param_groups"], "scalars": scalars,
            "tensor_keys": sorted(k[len(prefix) + 1:] for k in tensors if k.startswith(prefix + "."))}


def _restore_optimizer(prefix: str, optimizer: torch.optim.Optimizer, meta: dict[str, Any],
                       tensors: Mapping[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key in meta["tensor_keys"]:
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = tensors[f"{prefix}.{key}"]
    for key, value in meta["scalars"].items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save(folder: Path, *, models: Mapping[str, torch.nn.Module],
         optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
         rng: list[torch.Tensor], state: dict[str, Any]) -> Path:
    """Write a resumable checkpoint of ``models``, ``optimizers`` and their learning-rate
    ``schedulers`` (each keyed by role name)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for role, model in models.items():
        for key, value in model.state_dict().items():
            tensors[f"model.{role}.{key}"] = value.detach().cpu().contiguous().clone()
    optimizer_meta = {role: _flatten_optimizer(f"optim.{role}", opt, tensors)
                      for role, opt in optimizers.items()}
    for i, generator_state in enumerate(rng):
        tensors[f"rng.{i}"] = generator_state.cpu()
    save_file(tensors, str(folder / TENSORS))
    payload = {**state, "optimizers": optimizer_meta,
               "schedulers": {role: s.state_dict() for role, s in schedulers.items()},
               "rng_count": len(rng)}
    (folder / STATE).write_text(json.dumps(payload, indent=1))
    return folder


def load(folder: Path, *, models: Mapping[str, torch.nn.Module],
         optimizers: Mapping[str, torch.optim.Optimizer],
         schedulers: Mapping[str, Any]) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """Restore ``models``/``optimizers``/``schedulers`` in place; return the saved state and RNG."""
    tensors = load_file(str(folder / TENSORS))
    state = json.loads((folder / STATE).read_text())
    for role, model in models.items():
        prefix = f"model.{role}."
        model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for role, optimizer in optimizers.items():
        _restore_optimizer(f"optim.{role}", optimizer, state["optimizers"][role], tensors)
    for role, scheduler in schedulers.items():
        scheduler.load_state_dict(state["schedulers"][role])
    rng = [tensors[f"rng.{i}"] for i in range(state["rng_count"])]
    return state, rng
