"""How a configuration is named in the tables, the plots, predict and the demo:
``BERT (teacher)``, ``DistilBERT (fine-tuned)``, ``KD BERT→DistilBERT``,
``MetaDistil BERT+RoBERTa→DistilBERT + noise p=0.1 + warm start (1 epoch)``.

A model used as a teacher anywhere in the sweep is a teacher in every row that fine-tunes it, so
a label needs the sweep's set of teachers (:func:`teacher_models`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from orchestrator.report.reader import FINETUNE, KD, METADISTIL, GroupKey

MODEL_NAMES = {"bert": "BERT", "roberta": "RoBERTa", "distilbert": "DistilBERT",
               "tinybert": "TinyBERT", "minilm": "MiniLM"}
METHOD_NAMES = {FINETUNE: "Fine-tune", KD: "KD", METADISTIL: "MetaDistil"}


def model_name(model: str) -> str:
    """``minilm@2`` → ``MiniLM@2``: the registry's spelling, any layer cut kept."""
    base, at, layers = model.partition("@")
    return MODEL_NAMES.get(base, base) + (f"@{layers}" if at else "")


def teacher_models(keys: Iterable[GroupKey]) -> set[str]:
    return {teacher for key in keys for teacher in key.teachers}


def base_label(key: GroupKey, teachers: set[str]) -> str:
    """``BERT (teacher)``, ``DistilBERT (fine-tuned)``, ``KD BERT→DistilBERT``."""
    if key.method == FINETUNE:
        role = "teacher" if key.student in teachers else "fine-tuned"
        return f"{model_name(key.student)} ({role})"
    sources = "+".join(model_name(t) for t in key.teachers)
    return f"{METHOD_NAMES.get(key.method, key.method)} {sources}→{model_name(key.student)}"


def noise_label(noise_p: float) -> str:
    return f"+ noise p={noise_p:g}"


def warm_label(epochs: int) -> str:
    return f"+ warm start ({epochs} epoch{'' if epochs == 1 else 's'})"


def full_label(key: GroupKey, teachers: set[str]) -> str:
    """``MetaDistil BERT→DistilBERT + noise p=0.1 + warm start (1 epoch)``."""
    parts = [base_label(replace(key, noise_p=0.0, warmup_epochs=0), teachers)]
    if key.noise_p > 0:
        parts.append(noise_label(key.noise_p))
    if key.warmup_epochs > 0:
        parts.append(warm_label(key.warmup_epochs))
    return " ".join(parts)
