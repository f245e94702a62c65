"""MLflow names shared by the sweep, the workers, the report and the demo.

One experiment per sweep (named after the sweep); one parent run for the sweep itself; one child run
per trial. Every child run carries the tags below, so a report is a query, not a parse of run names.

Child run tags: ``sweep``, ``stage`` ("1" fine-tune, "2" distil from stage 1, "3" from a stage-2
assistant, ...), ``method`` (a name of ``trainers/methods/registry.py``'s registry), ``teachers``
("bert+roberta"; "" for fine-tune), ``assistants`` (a teacher-assistant chain between the teachers
and the student, "minilm@4>minilm@3"; absent where there is none), ``student`` (the model being trained),
``size`` (tiny | real), ``noise_p``, ``noise_teachers`` ("true" when the noise reaches the teachers'
inputs too), ``warmup_epochs``, ``meta_every`` (MetaDistil's cheaper variant when above 1),
``recipe`` (``default`` or a recipe's name, ``orchestrator/spec/recipes.py``), ``seed``, ``trial_key``
(content key of the trial: the same key is the same training, in any sweep). A search's trials
(``orchestrator/spec/search.py``) also carry ``sample`` (its index) and ``searched`` (its drawn or
suggested values, compact JSON at full precision: ``{"lr":0.000316...,"minilm.lr":...}``, a
teacher's prefixed with its name).

Metrics: per epoch (``step`` = epoch, 1-based) ``train_loss``, ``val_accuracy``, ``quiz_loss``
(MetaDistil), ``epoch_time_s``, ``samples_per_s``; once at the end ``test_accuracy``,
``student_params``, ``teacher_params`` (the largest teacher's count; the report's "Times Smaller"
reads the teachers' own fine-tune runs first).

Artifacts: ``config.json`` (the resolved trial config), ``predictions/test_predictions.csv``
(columns ``index, label, prediction, prob_positive``: one row per test example, for paired
statistics) and, since the int8 variant's were recorded, ``predictions/test_predictions_int8.csv``
(the same, of the int8 variant; ``trainers/models/compressed.py``). The student: a logged MLflow model
named ``model`` (transformers flavor, task ``text-classification``, ``id2label``
negative/positive; ``trainers/record/model_log.py``); runs logged before that hold a ``model/`` artifact
folder instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from trainers.methods import registry as methods
from trainers.record.artifacts import CONFIG_ARTIFACT, MODEL_ARTIFACT_DIR, PREDICTIONS_ARTIFACT

# The tags that tell one search sample's trial from another's of the same configuration.
SAMPLE_TAGS = ("sample", "searched", "trial_key")

__all__ = ["CONFIG_ARTIFACT", "MODEL_ARTIFACT_DIR", "PREDICTIONS_ARTIFACT", "TAG_KEYS",
           "SWEEP_RUN_KIND", "EXPERIMENT_KIND_TAG", "EXPERIMENT_KIND", "teachers_tag", "model_label",
           "run_name"]

TAG_KEYS = ("sweep", "stage", "method", "teachers", "student", "size", "noise_p", "noise_teachers",
            "warmup_epochs", "meta_every", "recipe", "seed", "trial_key")
SWEEP_RUN_KIND = "sweep"
# The experiment tag MLflow 3's UI reads for an experiment's type (its JS: "mlflow.experimentKind").
# Untagged, the UI guesses, and opens a sweep on the GenAI overview, an empty page; "Machine
# learning" opens it on its runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def teachers_tag(teachers: Sequence[str]) -> str:
    """``["bert", "roberta"]`` → ``"bert+roberta"`` (order kept: weights follow it)."""
    return "+".join(teachers)


def assistants_tag(assistants: Sequence[str]) -> str:
    """A teacher-assistant chain, ``["minilm@4", "minilm@3"]`` → ``"minilm@4>minilm@3"``."""
    return ">".join(assistants)


def model_label(method: str, student: str, teachers: Sequence[str], via: Sequence[str] = ()) -> str:
    """The model's name as the paper writes it: ``distilbert_from_bert+roberta`` or ``bert``; through
    teacher assistants ``minilm@2_from_minilm_via_minilm@4``."""
    known = methods.known(method)
    if not teachers or (known is not None and not known.distils):  # a fine-tune: the model itself
        return student
    return f"{student}_from_{teachers_tag(teachers)}" + (f"_via_{assistants_tag(via)}" if via else "")


def cohort_tag(cohort: Sequence[str]) -> str:
    """A cohort's members, ``["minilm@2", "minilm@4"]`` → ``"minilm@2+minilm@4"``."""
    return "+".join(cohort)


def run_name(method: str, student: str, teachers: Sequence[str], noise_p: float,
             warmup_epochs: int, seed: int, *, noise_teachers: bool = False, meta_every: int = 1,
             recipe: str = "", sample: int | None = None, via: Sequence[str] = (),
             cohort: Sequence[str] = (), member: int = 0) -> str:
    """Deterministic run name, e.g. ``distilbert_from_bert+roberta__metadistil__noise0.1__warm1__seed0``.

    Each variation appears only when it is on, so baselines read ``bert__finetune__seed0``: noise
    shared with the teachers ``noise0.1+teachers``, the cheaper MetaDistil ``every4``, a grid
    block's recipe other than the sweep's ``official``, a random search's sample ``s3`` (its values
    are in the ``searched`` tag: a name would be too long for them). A cohort's member is named by
    the cohort and its place in it, counted from 1: ``minilm@2+minilm@2_m2__mutual__seed0``.
    """
    label = f"{cohort_tag(cohort)}_m{member + 1}" if cohort else model_label(method, student, teachers, via)
    parts = [label, method]
    known = methods.known(method)
    if meta_every > 1 and known is not None and known.variant_key:  # the method's cheaper variant
        parts.append(f"every{meta_every}")
    if noise_p > 0:
        parts.append(f"noise{noise_p:g}" + ("+teachers" if noise_teachers else ""))
    if warmup_epochs > 0:
        parts.append(f"warm{warmup_epochs}")
    if recipe:
        parts.append(recipe)
    if sample is not None:
        parts.append(f"s{sample}")
    parts.append(f"seed{seed}")
    return "__".join(parts)
