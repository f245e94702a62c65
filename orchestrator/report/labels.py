"""How a configuration is named in the tables, the plots, predict and the demo:
``BERT (teacher)``, ``DistilBERT (fine-tuned)``, ``KD BERT→DistilBERT``,
``MetaDistil BERT+RoBERTa→DistilBERT + noise p=0.1 (teachers too) + warm start (1 epoch)``,
``MetaDistil (every 4th batch) MiniLM→MiniLM@2``, and with several recipes in a sweep
``KD BERT→DistilBERT [official]``.

A label depends on the whole sweep (:class:`SweepNames`): a model used as a teacher anywhere in it
is a teacher in every row that fine-tunes it, and a recipe is named only when the sweep's runs used
more than one (a sweep run entirely on one recipe reads as if recipes did not exist).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.report.reader import GroupKey, is_baseline
from trainers.methods import registry as methods

MODEL_NAMES = {"bert": "BERT", "roberta": "RoBERTa", "distilbert": "DistilBERT",
               "tinybert": "TinyBERT", "minilm": "MiniLM"}


@dataclass(frozen=True)
class SweepNames:
    """What a row's label needs to know of the sweep: the models used as teachers anywhere in it
    and the recipes its runs used (sorted)."""

    teachers: frozenset[str]
    recipes: tuple[str, ...]

    @classmethod
    def of(cls, keys: Iterable[GroupKey]) -> SweepNames:
        keys = list(keys)
        return cls(frozenset(teacher for key in keys for teacher in key.teachers),
                   tuple(sorted({key.recipe for key in keys})))


def model_name(model: str) -> str:
    """``minilm@2`` → ``MiniLM@2``, ``minilm%50`` → ``MiniLM%50``: the registry's spelling, any
    layer cut or pruning kept."""
    end = min((i for i in (model.find("@"), model.find("%")) if i >= 0), default=len(model))
    return MODEL_NAMES.get(model[:end], model[:end]) + model[end:]


def ordinal(n: int) -> str:
    """``2`` → ``2nd``, ``4`` → ``4th``, ``11`` → ``11th``, ``21`` → ``21st``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def method_name(key: GroupKey) -> str:
    """``MetaDistil``, or ``MetaDistil (every 4th batch)``: a meta update on every k-th batch only
    is a cheaper variant and must never read as MetaDistil itself."""
    known = methods.known(key.method)
    name = known.label if known else key.method
    return f"{name} (every {ordinal(key.meta_every)} batch)" if key.meta_every > 1 else name


def base_label(key: GroupKey, names: SweepNames) -> str:
    """``BERT (teacher)``, ``DistilBERT (fine-tuned)``, ``KD BERT→DistilBERT``: no noise, no warm
    start, no recipe."""
    if is_baseline(key.method):
        role = "teacher" if key.student in names.teachers else "fine-tuned"
        return f"{model_name(key.student)} ({role})"
    if key.cohort:
        return f"{method_name(key)} {model_name(key.student)} ({cohort_label(key)})"
    sources = "+".join(model_name(t) for t in key.teachers)
    chain = "".join(f"→{model_name(a)}" for a in key.assistants)
    return f"{method_name(key)} {sources}{chain}→{model_name(key.student)}"


def cohort_label(key: GroupKey) -> str:
    """``member 2 of MiniLM@2+MiniLM@2``: a cohort member's place, counted from 1."""
    return f"member {key.member} of {'+'.join(model_name(m) for m in key.cohort)}"


def noise_label(key: GroupKey) -> str:
    """``+ noise p=0.1``, or ``+ noise p=0.1 (teachers too)`` when the teachers saw it as well."""
    return f"+ noise p={key.noise_p:g}" + (" (teachers too)" if key.noise_teachers else "")


def warm_label(epochs: int) -> str:
    return f"+ warm start ({epochs} epoch{'' if epochs == 1 else 's'})"


def with_recipe(label: str, key: GroupKey, names: SweepNames) -> str:
    """``label [official]`` when the sweep used several recipes; the label alone otherwise."""
    return f"{label} [{key.recipe}]" if len(names.recipes) > 1 else label


def full_label(key: GroupKey, names: SweepNames) -> str:
    """``MetaDistil BERT→DistilBERT + noise p=0.1 + warm start (1 epoch)`` (+ `` [recipe]``)."""
    parts = [base_label(key, names)]
    if key.noise_p > 0:
        parts.append(noise_label(key))
    if key.warmup_epochs > 0:
        parts.append(warm_label(key.warmup_epochs))
    return with_recipe(" ".join(parts), key, names)
