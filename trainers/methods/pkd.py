"""Patient knowledge distillation (Sun, Cheng, Gan, Liu, EMNLP 2019, "Patient Knowledge Distillation
for BERT Model Compression"), as the official MetaDistil code applies it (``distillation_meta.py``).

The student's [CLS] states after its layers 1 … L_s − 1 (not the last: the logits cover it) learn
the teacher's [CLS] states after the matched teacher layers, both L2-normalised:

    PKD(h_s, h_t) = mean over (layer, example, unit) of ( h_s/‖h_s‖ − h_t/‖h_t‖ )²

Teacher layers are chosen among its L_t − 1 non-final layers, as the official code's ``--select``:

- ``skip``: every ``L_t // L_s``-th, e.g. 12 → 6 matches teacher layers 2, 4, 6, 8, 10;
- ``last``: the last L_s − 1 of them, e.g. 12 → 6 matches teacher layers 7 … 11.

Layer numbers here are 1-based, which is also their index in a Hugging Face model's
``hidden_states`` tuple (index 0 is the embeddings). States are compared unit by unit, so the two
hidden sizes must agree; this project refuses other pairs rather than learning a projection.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from trainers.errors import UserError


class Shape(NamedTuple):
    """What PKD needs to know of a model: its transformer layers and hidden size."""

    layers: int
    hidden: int

    @classmethod
    def of(cls, config) -> Shape:
        """From a Hugging Face config (DistilBERT's ``n_layers``/``dim`` map to these names)."""
        return cls(config.num_hidden_layers, config.hidden_size)


class PkdError(UserError):
    """PKD cannot pair these two models; the message names them and the fix."""


def matched_layers(student: Shape, teacher: Shape, how: str) -> tuple[list[int], list[int]]:
    """``(student, teacher)`` 1-based layer numbers whose [CLS] states PKD compares."""
    if student.hidden != teacher.hidden:
        raise PkdError(f"PKD compares hidden states unit by unit, but the student's are "
                       f"{student.hidden} wide and the teacher's {teacher.hidden}; pick models of one "
                       "hidden size or set pkd_weight: 0 for this pair")
    student_layers, teacher_layers = student.layers, teacher.layers
    if student_layers < 2:
        raise PkdError(f"a {student_layers}-layer student has no intermediate layer for PKD; use a "
                       "student with at least 2 layers or set pkd_weight: 0")
    if teacher_layers < student_layers:
        raise PkdError(f"PKD needs a teacher at least as deep as the student ({teacher_layers} < "
                       f"{student_layers} layers); swap them or set pkd_weight: 0")
    candidates = list(range(1, teacher_layers))  # the teacher's non-final layers
    if how == "last":
        chosen = candidates[-(student_layers - 1):]
    else:
        every = teacher_layers // student_layers
        chosen = candidates[every - 1::every]
    return list(range(1, student_layers)), sorted(chosen[:student_layers - 1])


def cls_states(hidden_states: tuple[torch.Tensor, ...], layers: list[int]) -> torch.Tensor:
    """The [CLS] (first-position) state after each of ``layers``: (batch, len(layers), hidden)."""
    return torch.stack([hidden_states[i][:, 0] for i in layers], dim=1)


def patience_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between L2-normalised states, averaged over every element (no epsilon, as the official
    code: a [CLS] state after a LayerNorm is never zero)."""
    return F.mse_loss(student / student.norm(dim=-1, keepdim=True),
                      teacher / teacher.norm(dim=-1, keepdim=True))
