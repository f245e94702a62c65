"""Each model predict and the demo show, as its variants: the fp32 model and, where its run has one,
its int8 variant, each with what the run recorded about its cost (issue 29, item 3).

Where each figure comes from. When a trial finishes, ``trainers/models/compressed.py`` measures its model
and the int8 variant side by side with ``trainers/models/cost.py`` and logs, per variant (suffix ``_int8``
for the int8 one): ``size_mb`` (10⁶ bytes of the weights file the variant ships as: safetensors,
``model.int8.safetensors``), ``latency_ms_p50`` (the median forward pass of one test sentence
alone, batch 1, eager PyTorch on ``cost_threads`` CPU threads, tokenizing not timed, over the first
128 test sentences) and ``test_<metric>`` (the task's test split). They are read here from the run
as logged, never re-measured: the same figure for a model wherever it is shown, taken the same way
for every model of every sweep. A run logged before the cost harness existed has none of them
(``None``: shown as "–").

Where the int8 variant's weights are: ``model.int8.safetensors`` (``trainers/models/quantize.py``) beside
the ``config.json`` of the model predict loads (a trial folder's ``model/``; a logged MLflow model
keeps its config in its own ``model/``), else in the run's trial folder's ``model/`` (``model_dir``
tag) while that folder is still there. A run that recorded the int8 variant's cost but has no such
file gets an int8 row with its recorded figures and no answer (``folder`` ``None``), so that the
comparison is still shown and the missing answer is said, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.tracking import MlflowClient

from orchestrator.report.reader import TrialRun
from trainers.data.tasks import Task
from trainers.errors import UserError
from trainers.models import cost_names
from trainers.models.quantize import INT8_WEIGHTS
from trainers.record.artifacts import MODEL_ARTIFACT_DIR, MODEL_DIR_TAG

FP32, INT8 = "fp32", "int8"
SUFFIX = {FP32: "", INT8: cost_names.INT8}
# What the cost columns say they are, wherever they are shown (predict's table, the page).
SIZE_HEADER = "Size"
RECORDED_HEADER = "Latency (run)"
RECORDED_NOTE = ("Size: the weights file the variant ships as. Latency (run): the median forward pass "
                 "of one test sentence alone (batch 1, {threads}), recorded by the cost harness "
                 "when the model finished training, not timed on this sentence.")


class VariantError(UserError):
    """A variant cannot be described as asked; the message names the value and the fix."""


@dataclass(frozen=True)
class Variant:
    """One row: a model's fp32 weights or its int8 variant, where they load from (``folder``;
    ``None``: the run has no file for this variant) and the figures its run recorded (``None``:
    not recorded)."""

    label: str  # the model's, the same for both variants
    kind: str  # FP32 or INT8
    folder: str | None
    size_mb: float | None = None
    latency_ms_p50: float | None = None
    test_score: float | None = None  # the task's main test metric, a fraction
    cost_threads: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SUFFIX:
            raise VariantError(f"variant kind {self.kind!r}: expected {FP32!r} or {INT8!r}")


def recorded(metrics: dict[str, float], kind: str, task: Task) -> dict[str, float | int | None]:
    """The cost figures and main test score a run logged for the ``kind`` variant (``None`` where
    it logged none)."""
    suffix = SUFFIX[kind]
    threads = metrics.get(cost_names.THREADS)
    return {"size_mb": metrics.get(cost_names.SIZE + suffix),
            "latency_ms_p50": metrics.get(cost_names.LATENCY_P50 + suffix),
            "test_score": metrics.get(f"test_{task.main_metric}{suffix}"),
            "cost_threads": None if threads is None else int(threads)}


def int8_folder(folder: Path, trial_folder: str | None = None) -> Path | None:
    """The folder holding the int8 variant's ``model.int8.safetensors`` and its ``config.json``
    (see the module's notes), ``None`` where there is none."""
    candidates = [folder / MODEL_ARTIFACT_DIR if (folder / MLMODEL_FILE_NAME).is_file() else folder]
    if trial_folder:
        candidates.append(Path(trial_folder) / MODEL_ARTIFACT_DIR)
    for candidate in candidates:
        if (candidate / INT8_WEIGHTS).is_file() and (candidate / "config.json").is_file():
            return candidate
    return None


def variants(client: MlflowClient, chosen: list[tuple[str, TrialRun]], sources: list[tuple[str, Path]],
             task: Task) -> list[Variant]:
    """Every row to show, in ``sources``' order (``chosen``: the same models, from
    :func:`~orchestrator.report.best.best_runs`): each model's fp32 variant, then its int8 one where
    the run has its weights or recorded its cost."""
    rows = []
    for (label, run), (_, folder) in zip(chosen, sources, strict=True):
        found = client.get_run(run.run_id).data
        rows.append(Variant(label, FP32, str(folder), **recorded(found.metrics, FP32, task)))
        quantized = int8_folder(folder, found.tags.get(MODEL_DIR_TAG))
        int8_figures = recorded(found.metrics, INT8, task)
        if quantized is not None or int8_figures["size_mb"] is not None:
            rows.append(Variant(label, INT8, None if quantized is None else str(quantized), **int8_figures))
    return rows


def threads_said(rows: list[Variant]) -> str:
    """How many CPU threads the recorded latencies were measured on, in words."""
    counts = sorted({row.cost_threads for row in rows if row.cost_threads is not None})
    if not counts:
        return "no run recorded it"
    return " or ".join(str(n) for n in counts) + f" CPU thread{'' if counts == [1] else 's'}"


def number(value: float | None, unit: str) -> str:
    """A recorded figure with one decimal and its unit; "–" where the run recorded none."""
    return "–" if value is None else f"{value:.1f}{unit}"


def score(task: Task, value: float | None) -> str:
    """A recorded test score as the report shows it: a percentage, Matthews' correlation as is."""
    if value is None:
        return "–"
    return f"{value:.3f}" if task.main_metric == "matthews" else f"{value:.1%}"
