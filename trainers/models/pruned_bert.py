"""A BERT whose attention has fewer heads than its width holds: the saved form of a pruned student.

Why a class of its own. transformers 5 builds every BERT attention layer ``hidden_size`` wide
(``attention_head_size = hidden_size / num_attention_heads``, and Q, K, V and the output projection
``hidden_size × hidden_size``), and it dropped ``prune_heads`` and the config's ``pruned_heads``
that rebuilt a narrower attention on load (transformers 4 had both). A BERT with 6 of its 12
32-dimensional heads (MiniLM half-pruned: Q, K, V 384 → 192 rows) therefore has no stock config:
saved as ``bert``, ``from_pretrained`` refuses its weights for their shape. This config says the
head width apart from the head count (``attention_head_size``, as DeBERTa-v2's config may), and
the model builds each attention ``num_attention_heads × attention_head_size`` wide; everything
else (embeddings, the feed-forward layers at ``intermediate_size``, LayerNorms, pooler, head) is
BERT's own code, unchanged. Every layer keeps the same number of heads and neurons (one count in
the config); which of the original heads and neurons each layer kept is recorded beside them in
the config (``trainers/models/prune.py``).

Loading. The type is registered with transformers' Auto classes by :func:`register` (idempotent;
the project's loaders call it first: ``trainers/models/build.py``, ``trainers/record/model_log.py``,
``trainers/models/quantize.py``, ``orchestrator/serve/predict.py``), after which
``AutoModelForSequenceClassification.from_pretrained`` and MLflow's transformers flavor load a
saved pruned model like any other. A process that has not
imported the project (a bare ``mlflow models serve``) does not know the type: call ``register()``
there first.
"""

from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig
from transformers.models.bert.modeling_bert import BertForSequenceClassification

MODEL_TYPE = "metadistil-pruned-bert"


@strict
class PrunedBertConfig(BertConfig):
    """BERT's config and the width of one head; ``num_attention_heads`` is the count kept per layer."""

    model_type = MODEL_TYPE

    attention_head_size: int = 64


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    """BERT for sequence classification whose attention is ``heads × attention_head_size`` wide."""

    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig) -> None:
        kept = config.num_attention_heads
        # BERT's own layers are built at the full width (all the heads of this head size that the
        # hidden size holds), then narrowed: its constructor divides the hidden size by the count.
        config.num_attention_heads = config.hidden_size // config.attention_head_size
        try:
            super().__init__(config)
        finally:
            config.num_attention_heads = kept
        for layer in self.bert.encoder.layer:
            narrow_attention(layer.attention, kept, config.attention_head_size)
        self.post_init()  # initialises the narrowed projections (from_pretrained then loads them)


def narrow_attention(attention: torch.nn.Module, heads: int, head_size: int) -> None:
    """Make a BERT attention block ``heads × head_size`` wide, in place: fresh Q, K, V and output
    projections of that width (``post_init`` initialises them, ``from_pretrained`` fills them)."""
    self_attention, dense = attention.self, attention.output.dense
    width = heads * head_size
    for name in ("query", "key", "value"):
        old = getattr(self_attention, name)
        setattr(self_attention, name, torch.nn.Linear(old.in_features, width, device=old.weight.device,
                                                      dtype=old.weight.dtype))
    attention.output.dense = torch.nn.Linear(width, dense.out_features, device=dense.weight.device,
                                             dtype=dense.weight.dtype)
    self_attention.num_attention_heads = heads
    self_attention.all_head_size = width


def register() -> None:
    """Make transformers know the pruned BERT (idempotent): its Auto classes (``from_pretrained``,
    ``from_config``, pipelines), and its top-level namespace, where MLflow's transformers flavor
    looks a logged model's class up by name (``getattr(transformers, "PrunedBert…")``)."""
    import transformers

    AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(PrunedBertConfig, PrunedBertForSequenceClassification,
                                                exist_ok=True)
    setattr(transformers, PrunedBertForSequenceClassification.__name__, PrunedBertForSequenceClassification)
