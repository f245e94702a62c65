"""Structured pruning: a BERT student with the least important attention heads and feed-forward
neurons of every layer removed from its weights (issue 29, item 1; ``minilm%50``).

Importance (Michel, Levy, Neubig, NeurIPS 2019, "Are Sixteen Heads Really Better than One?",
eq. 2). Each head ``h`` gets a gate ``ξ_h`` on its output (``Att(x) = Σ_h ξ_h · Att_h(x)``), each
feed-forward neuron ``i`` a gate ``ζ_i`` on its activation, all equal to 1, and

    I_h = E_x | ∂L(x) / ∂ξ_h |            I_i = E_x | ∂L(x) / ∂ζ_i |

the first-order Taylor estimate of how much the loss changes when the unit is removed (Michel et
al. rank heads by it; for neurons the same expansion is Molchanov et al.'s, ICLR 2017:
``|Σ_tokens a_i · ∂L/∂a_i|``). ``L`` is the task's cross-entropy under the model's own head (a
fine-tuned model: its trained classifier, as in the paper; a pretrained encoder: the fresh head the
trial's seed draws, so the score measures how much each unit moves the loss in that seeded
direction), in eval mode (no dropout), on ``IMPORTANCE_EXAMPLES`` training examples drawn by the
trial's seed, ``IMPORTANCE_BATCH`` at a time. Gates are per example (shape batch × units), so the
absolute value is taken per example as the expectation says, not per batch as the paper's code
does. The score is a pure function of the weights, the examples and the seed; across Ray Train
workers rank 0's scores are broadcast, so every rank removes the same units whatever its arithmetic.

Which units go. Every layer keeps the same number of heads and of neurons (``round(p·n)``,
``trainers.models.refs.kept_count``), its own most important ones, ties to the lower index. Michel
et al. rank heads across layers; one count per layer keeps the saved config a plain BERT config
with one head count and one ``intermediate_size`` (``trainers/models/pruned_bert.py``), which transformers
reloads with ``from_pretrained``; a per-layer count would need a config per layer.

Removal. The kept heads' rows of Q, K and V and columns of the attention output projection, the
kept neurons' rows of the first feed-forward layer and columns of the second, are copied into a
:class:`~trainers.models.pruned_bert.PrunedBertForSequenceClassification` of the smaller shape; every other
weight as it was. The removed units' contributions are gone, not masked: the attention output
bias and the second feed-forward bias stay whole (they do not belong to a unit).

The record. What each layer kept, in the original model's numbering, goes into the config as
``pruning`` (saved with the model, so the trial's folder and its MLflow model carry it) with the
head scores and how they were computed; the worker logs a summary as the run's params and the whole
record as its ``pruning.json`` artifact.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel

from trainers.data.tokens import Encoded
from trainers.models.pruned_bert import (
    MODEL_TYPE,
    PrunedBertConfig,
    PrunedBertForSequenceClassification,
    register,
)
from trainers.models.refs import ModelError, kept_count
from trainers.runtime.distributed import world

IMPORTANCE_EXAMPLES = 256
IMPORTANCE_BATCH = 32
SCORE = "michel2019-taylor"  # the record names the score: E_x |∂L(x)/∂gate|
PRUNABLE = ("bert", MODEL_TYPE)
RECORD_ARTIFACT = "pruning.json"  # the whole record, in the trial's MLflow run


def shape(config: PretrainedConfig, name: str) -> tuple[int, int, int]:
    """``(heads per layer, head width, neurons per layer)`` of a BERT config; other families are
    refused in one line."""
    if config.model_type not in PRUNABLE:
        raise ModelError(f"model {name!r}: pruning removes heads and neurons of BERT models (bert, "
                         f"tinybert, minilm, a BERT folder), not {config.model_type}; drop the '%' "
                         "suffix or prune a BERT model")
    head_size = getattr(config, "attention_head_size", config.hidden_size // config.num_attention_heads)
    return config.num_attention_heads, head_size, config.intermediate_size


def pruned_config(config: PretrainedConfig, percents: tuple[float, float], name: str) -> PrunedBertConfig:
    """The config of ``config``'s model pruned to ``percents`` (heads, neurons), each layer's counts
    checked: the architecture a pruned reference builds, before any weight is loaded."""
    heads, head_size, neurons = shape(config, name)
    raw = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "transformers_version")}
    raw.update(num_attention_heads=kept_count(percents[0], heads, "heads", name),
               attention_head_size=head_size,
               intermediate_size=kept_count(percents[1], neurons, "feed-forward neurons", name),
               architectures=[PrunedBertForSequenceClassification.__name__])
    register()
    return PrunedBertConfig(**raw)


@contextmanager
def _gated(model: PreTrainedModel, head_size: int) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Hooks that multiply every head's output and every neuron's activation by a gate of ones of
    shape (batch, units), created per forward pass; yields where the gates of the last pass are."""
    gates: dict[str, list[torch.Tensor]] = {"heads": [], "neurons": []}

    def gate(kind: str, units: int, out: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(out.shape[0], units, dtype=out.dtype, device=out.device, requires_grad=True)
        gates[kind].append(ones)
        return ones

    def heads(module, args, output):
        attended, *rest = output  # (batch, tokens, heads · head_size)
        b, t, width = attended.shape
        g = gate("heads", width // head_size, attended)
        return (attended.view(b, t, -1, head_size) * g[:, None, :, None]).view(b, t, width), *rest

    def neurons(module, args, output):
        return output * gate("neurons", output.shape[-1], output)[:, None, :]

    handles = []
    for layer in model.base_model.encoder.layer:
        handles.append(layer.attention.self.register_forward_hook(heads))
        handles.append(layer.intermediate.register_forward_hook(neurons))
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def importance(model: PreTrainedModel, encoded: Encoded, labels: np.ndarray, *, pad_id: int,
               seed: int, examples: int = IMPORTANCE_EXAMPLES, batch_size: int = IMPORTANCE_BATCH
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(I_heads, I_neurons)``, (layers × heads) and (layers × neurons): Michel et al.'s scores
    on ``examples`` rows of ``encoded`` drawn by ``seed`` (see the module's notes)."""
    _, head_size, _ = shape(model.config, type(model).__name__)
    device = next(model.parameters()).device
    rows = np.random.default_rng(seed).permutation(len(encoded))[:examples]
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    try:
        with _gated(model, head_size) as gates:
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                gates["heads"].clear()
                gates["neurons"].clear()
                logits = model(**encoded.padded(batch, pad_id, device)).logits.float()
                target = torch.as_tensor(labels[batch], device=device)
                loss = F.cross_entropy(logits, target, reduction="sum")  # Σ_x L(x): per-example gradients
                grads = torch.autograd.grad(loss, gates["heads"] + gates["neurons"])
                layers = len(gates["heads"])
                for kind, part in (("heads", grads[:layers]), ("neurons", grads[layers:])):
                    total = torch.stack([g.abs().sum(dim=0) for g in part]).double()
                    sums[kind] = sums[kind] + total if kind in sums else total
    finally:
        model.train(was_training)
    scores = (sums["heads"] / len(rows), sums["neurons"] / len(rows))
    return tuple(_from_rank_zero(s) for s in scores)


def _from_rank_zero(scores: torch.Tensor) -> torch.Tensor:
    """Rank 0's scores on every rank (one worker: as they are), so that all prune alike."""
    _, size = world()
    if size == 1:
        return scores
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    shared = scores.to(device or scores.device)
    dist.broadcast(shared, src=0)
    return shared.to(scores.device)


def most_important(scores: torch.Tensor, keep: int) -> list[list[int]]:
    """Per layer (row), the indices of its ``keep`` highest scores, in increasing order; of equal
    scores the lower index is kept."""
    order = torch.sort(-scores, dim=1, stable=True).indices[:, :keep]
    return [sorted(row) for row in order.tolist()]


def _slice(weights: dict[str, torch.Tensor], prefix: str, heads: list[int], head_size: int,
           neurons: list[int]) -> None:
    """Cut one layer's tensors in ``weights`` (a state dict, in place) to the kept units."""
    rows = torch.tensor([h * head_size + d for h in heads for d in range(head_size)])
    kept = torch.tensor(neurons)
    for name in ("query", "key", "value"):
        for part in ("weight", "bias"):
            key = f"{prefix}.attention.self.{name}.{part}"
            weights[key] = weights[key][rows]
    key = f"{prefix}.attention.output.dense.weight"
    weights[key] = weights[key][:, rows]
    for part in ("weight", "bias"):
        key = f"{prefix}.intermediate.dense.{part}"
        weights[key] = weights[key][kept]
    key = f"{prefix}.output.dense.weight"
    weights[key] = weights[key][:, kept]


def remove(model: PreTrainedModel, heads: list[list[int]], neurons: list[list[int]],
           config: PrunedBertConfig) -> PrunedBertForSequenceClassification:
    """A new, smaller model of ``config`` holding ``model``'s weights of the kept ``heads`` and
    ``neurons`` (per layer, original numbering) and all its other weights; ``model`` is unchanged."""
    _, head_size, _ = shape(model.config, type(model).__name__)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    prefix = model.base_model_prefix
    for index, (kept_heads, kept_neurons) in enumerate(zip(heads, neurons)):
        _slice(weights, f"{prefix}.encoder.layer.{index}", kept_heads, head_size, kept_neurons)
    with torch.device("meta"):  # no weight initialised (nor the random state drawn) for nothing
        pruned = PrunedBertForSequenceClassification(config)
    pruned.load_state_dict(weights, strict=True, assign=True)
    buffers = dict(model.named_buffers())
    for name, buffer in list(pruned.named_buffers()):
        if buffer.is_meta:  # non-persistent (position ids): in no state dict, the same as before
            owner, _, attribute = name.rpartition(".")
            pruned.get_submodule(owner).register_buffer(attribute, buffers[name].clone(), persistent=False)
    pruned.train(model.training)
    return pruned


def prune(model: PreTrainedModel, percents: tuple[float, float], encoded: Encoded, labels: np.ndarray,
          *, pad_id: int, seed: int, name: str) -> PrunedBertForSequenceClassification:
    """``model`` pruned to ``percents`` (of heads, of neurons) by :func:`importance`, with the record
    of what each layer kept in its config (``pruning``)."""
    config = pruned_config(model.config, percents, name)
    head_scores, neuron_scores = importance(model, encoded, labels, pad_id=pad_id, seed=seed)
    heads = most_important(head_scores, config.num_attention_heads)
    neurons = most_important(neuron_scores, config.intermediate_size)
    config.pruning = {
        "score": SCORE, "examples": min(IMPORTANCE_EXAMPLES, len(encoded)), "seed": seed,
        "percent_heads": percents[0], "percent_neurons": percents[1],
        "heads_before": head_scores.shape[1], "neurons_before": neuron_scores.shape[1],
        "heads": heads, "neurons": neurons,
        "head_scores": [[float(f"{v:.6g}") for v in row] for row in head_scores.tolist()],
    }
    return remove(model, heads, neurons, config)


def summary(pruning: dict[str, Any]) -> dict[str, str]:
    """The run's params of a pruned student: the counts kept, and each layer's kept heads."""
    layers = len(pruning["heads"])
    return {"student_pruned": f"{len(pruning['heads'][0])}/{pruning['heads_before']} heads, "
                              f"{len(pruning['neurons'][0])}/{pruning['neurons_before']} neurons "
                              f"in each of {layers} layers ({pruning['score']}, "
                              f"{pruning['examples']} examples)",
            "student_kept_heads": " ".join(f"{i}:" + ",".join(map(str, h))
                                           for i, h in enumerate(pruning["heads"]))}

