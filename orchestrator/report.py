"""Report: one sweep's MLflow runs → Tables 1–3, significance, plots and a README.

    python -m orchestrator.report [--sweep NAME] [--tracking-uri URI] [--out DIR]

Everything is read through ``MlflowClient`` (tags, final metrics, the ``val_accuracy`` history and
the ``predictions/test_predictions.csv`` artifact named in :mod:`orchestrator.tracking`), never from
Ray's folders. FINISHED child runs are grouped by (method, teachers, student, noise_p,
warmup_epochs); the seeds of a group are its repetitions. Files land in ``results/<sweep>/``:

- ``table1``/``table2``/``table3``/``significance`` as ``.md``, ``.csv`` and ``.tex`` (booktabs);
- ``runs.csv``: every run id behind every row, so each cell can be traced back to MLflow;
- ``plots/accuracy_vs_params.png``, ``plots/val_accuracy_per_epoch.png``;
- ``README.md`` embedding the tables and linking the plots.

Rows come from whatever runs exist plus the rows the sweep implies (every teacher, every student,
KD and MetaDistil for every teacher set that was distilled, and for paper sweeps every configuration
of the original work); a row without runs says "not run".
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import requests
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mlflow import MlflowClient
from mlflow.entities import Experiment, Run
from mlflow.exceptions import MlflowException

from orchestrator import paths, stats, tracking
from orchestrator.runs import redact

FINETUNE, KD, METADISTIL = "finetune", "kd", "metadistil"
NOT_RUN = "not run"
PAGE_SIZE = 1000
HEALTH_TIMEOUT_S = 3.0
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

MODEL_NAMES = {"bert": "BERT", "roberta": "RoBERTa", "distilbert": "DistilBERT",
               "tinybert": "TinyBERT", "minilm": "MiniLM"}
METHOD_NAMES = {FINETUNE: "Fine-tune", KD: "KD", METADISTIL: "MetaDistil"}
METHOD_MARKERS = {FINETUNE: "s", KD: "^", METADISTIL: "D"}
TABLE_HEADERS = ("Method", "Accuracy (mean ± std, n)", "95 % interval", "No. of Parameters",
                 "Times Smaller")
ORIGINAL_HEADER = "Original work"
RUNS_HEADER = "Runs"


class ReportError(Exception):
    """Bad input the user can fix (unknown sweep, unreachable store, no runs): one line, exit 2."""


# --------------------------------------------------------------------------------------- data


@dataclass(frozen=True, order=True)
class GroupKey:
    """One configuration; its runs differ only by seed."""

    method: str
    teachers: tuple[str, ...]
    student: str
    noise_p: float = 0.0
    warmup_epochs: int = 0

    @property
    def plain(self) -> bool:
        """No noise and no warm start: a Table 1 configuration."""
        return self.noise_p == 0 and self.warmup_epochs == 0


@dataclass(frozen=True)
class TrialRun:
    """The parts of one FINISHED child run that the report uses; accuracies in percent."""

    run_id: str
    run_name: str
    key: GroupKey
    seed: int
    accuracy: float
    student_params: int
    teacher_params: int
    size: str
    trial_key: str
    start_time: int


@dataclass(frozen=True)
class OriginalNumber:
    """One accuracy (%) of the original work (DESIGN.md). ``teachers=None`` or ``noisy=True``
    mark what DESIGN.md leaves unstated (the teacher set; the noise probability): such a number is
    shown next to every row that matches the rest, with a footnote."""

    accuracy: float
    method: str
    student: str
    teachers: tuple[str, ...] | None = ()
    noisy: bool = False
    warmup_epochs: int = 0

    @property
    def stated(self) -> bool:
        return self.teachers is not None and not self.noisy

    def matches(self, key: GroupKey) -> bool:
        return (key.method == self.method and key.student == self.student
                and (self.teachers is None or key.teachers == self.teachers)
                and (key.noise_p > 0) == self.noisy and key.warmup_epochs == self.warmup_epochs)

    def key(self) -> GroupKey:
        return GroupKey(self.method, self.teachers or (), self.student, 0.0, self.warmup_epochs)


ORIGINAL_WORK = (
    OriginalNumber(93.8, FINETUNE, "bert"),
    OriginalNumber(92.95, FINETUNE, "roberta"),
    OriginalNumber(92.65, FINETUNE, "distilbert"),
    OriginalNumber(89.95, FINETUNE, "tinybert"),
    OriginalNumber(93.1, KD, "distilbert", ("bert",)),
    OriginalNumber(91.65, KD, "tinybert", ("bert",)),
    OriginalNumber(81.5, KD, "distilbert", ("roberta",)),
    OriginalNumber(93.1, METADISTIL, "distilbert", ("bert",)),
    OriginalNumber(90.3, METADISTIL, "tinybert", ("bert",)),
    OriginalNumber(89.3, METADISTIL, "distilbert", ("roberta",)),
    OriginalNumber(92.85, METADISTIL, "distilbert", ("bert", "roberta")),
    OriginalNumber(93.55, METADISTIL, "distilbert", ("bert", "bert")),
    # DESIGN.md gives "warm start (1 epoch) 92.45" without its teacher set, and the two noise
    # numbers without their p: they annotate every matching row, marked ‡.
    OriginalNumber(92.45, METADISTIL, "distilbert", None, warmup_epochs=1),
    OriginalNumber(88.55, METADISTIL, "distilbert", ("bert", "bert"), noisy=True),
    OriginalNumber(88.5, METADISTIL, "distilbert", ("bert", "roberta"), noisy=True),
)


@dataclass(frozen=True)
class Row:
    label: str
    key: GroupKey
    runs: tuple[TrialRun, ...]


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Table:
    name: str
    number: int
    title: str
    sections: tuple[Section, ...]
    empty_note: str

    @property
    def heading(self) -> str:
        """``Table 1: …`` for Markdown; LaTeX numbers its captions itself."""
        return f"Table {self.number}: {self.title}"

    @property
    def rows(self) -> list[Row]:
        return [row for section in self.sections for row in section.rows]


@dataclass(frozen=True)
class Cells:
    """The numbers of one table row; ``None`` where they cannot be computed."""

    summary: stats.Summary | None
    interval: tuple[float, float] | None
    over_test_examples: bool
    params: int | None
    times_smaller: float | None
    original: OriginalNumber | None


@dataclass(frozen=True)
class Comparison:
    """A distilled configuration against a baseline row: the fine-tuned student, or KD with the
    same teacher(s) and student."""

    row: Row
    baseline: Row
    seeds: tuple[int, ...]
    bootstrap: stats.BootstrapResult | None
    mcnemar: stats.McNemarResult | None
    note: str


@dataclass(frozen=True)
class RowTests:
    """A distilled row's paired tests: against its fine-tuned student and (but KD itself) KD."""

    finetuned: Comparison
    kd: Comparison | None

    @property
    def row(self) -> Row:
        return self.finetuned.row


@dataclass(frozen=True)
class SweepData:
    name: str
    experiment: Experiment
    tags: dict[str, str]
    parent_run_id: str | None
    runs: tuple[TrialRun, ...]
    skipped: tuple[str, ...]
    unfinished: int
    span_ms: tuple[int, int | None] | None = None  # the sweep run's start and (last) end

    @property
    def is_paper(self) -> bool:
        """paper.yaml sweeps get the original work's numbers in a side column."""
        return self.name.startswith("paper") or Path(self.tags.get("space", "")).stem == "paper"


@dataclass(frozen=True)
class ReportResult:
    sweep: str
    out_dir: Path
    files: tuple[Path, ...]
    table1_markdown: str
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------- reading MLflow


def sweep_names(client: MlflowClient) -> list[str]:
    """Names of the sweep experiments (one experiment per sweep; MLflow's own Default excluded)."""
    return sorted(e.name for e in client.search_experiments() if e.name != "Default")


def resolve_sweep(client: MlflowClient, sweep: str | None) -> str:
    """The sweep to report: the one named, or the only one there is."""
    names = sweep_names(client)
    if sweep is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise ReportError(f"no sweeps in {redact(client.tracking_uri)}; "
                              f"run one with: python -m orchestrator.sweep --name NAME")
        raise ReportError(f"several sweeps, pick one with --sweep: {', '.join(names)}")
    if sweep not in names:
        raise _unknown_sweep(client, sweep, names)
    return sweep


def _unknown_sweep(client: MlflowClient, sweep: str, names: Sequence[str]) -> ReportError:
    where = redact(client.tracking_uri)
    if names:
        return ReportError(f"unknown sweep {sweep!r}; sweeps in {where}: {', '.join(names)}; pick one with --sweep")
    return ReportError(f"unknown sweep {sweep!r}: {where} holds no sweep; run it with: "
                       f"python -m orchestrator.sweep --name {sweep}")


def load_sweep(client: MlflowClient, sweep: str) -> SweepData:
    """The sweep's experiment, its parent run's tags and its FINISHED trial runs (one per seed)."""
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None or experiment.lifecycle_stage != "active":
        raise _unknown_sweep(client, sweep, sweep_names(client))
    finished = _search(client, experiment.experiment_id,
                       "tags.method IS NOT NULL AND attributes.status = 'FINISHED'")
    if not finished:
        raise ReportError(f"sweep {sweep!r} has no finished trial runs in {client.tracking_uri}; "
                          f"produce them with: python -m orchestrator.sweep --name {sweep}")
    unfinished = _search(client, experiment.experiment_id,
                         "tags.method IS NOT NULL AND attributes.status != 'FINISHED'")
    parent = _parent_run(client, experiment.experiment_id)
    runs, skipped = _trial_runs(finished)
    tags = {**experiment.tags, **(parent.data.tags if parent else {})}
    return SweepData(sweep, experiment, tags, parent.info.run_id if parent else None,
                     runs, skipped, len(unfinished),
                     (parent.info.start_time, parent.info.end_time) if parent else None)


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=PAGE_SIZE,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _parent_run(client: MlflowClient, experiment_id: str) -> Run | None:
    """The sweep's own run (tag ``kind`` = ``sweep``, as orchestrator.runs creates it), if any."""
    found = _search(client, experiment_id, f"tags.kind = '{tracking.SWEEP_RUN_KIND}'")
    return max(found, key=lambda run: run.info.start_time or 0, default=None)


def _trial_runs(runs: Iterable[Run]) -> tuple[tuple[TrialRun, ...], tuple[str, ...]]:
    """Parse runs; a trial logged twice (same ``trial_key``, or same configuration and seed when
    there is no key) counts once, with its latest run. Distinct trainings that share a
    configuration and seed (e.g. a teacher fine-tuned with other hyper-parameters) all count."""
    latest: dict[tuple[GroupKey, int, str], TrialRun] = {}
    skipped: list[str] = []
    for run in runs:
        try:
            trial = _trial_run(run)
        except KeyError as err:
            skipped.append(f"run {run.info.run_id} skipped: no {err.args[0]!r} tag or metric")
            continue
        except ValueError as err:
            skipped.append(f"run {run.info.run_id} skipped: {err}")
            continue
        slot = (trial.key, trial.seed, trial.trial_key)
        if slot in latest:
            trial, older = sorted((latest[slot], trial), key=lambda t: t.start_time, reverse=True)
            skipped.append(f"run {older.run_id} skipped: run {trial.run_id} is a later run of "
                           f"the same trial")
        latest[slot] = trial
    return tuple(sorted(latest.values(), key=lambda t: (t.key, t.seed))), tuple(skipped)


def _trial_run(run: Run) -> TrialRun:
    tags, metrics = run.data.tags, run.data.metrics
    teachers = tags.get("teachers", "")
    key = GroupKey(method=tags["method"],
                   teachers=tuple(teachers.split("+")) if teachers else (),
                   student=tags["student"],
                   noise_p=float(tags.get("noise_p") or 0),
                   warmup_epochs=int(float(tags.get("warmup_epochs") or 0)))
    return TrialRun(run_id=run.info.run_id, run_name=run.info.run_name or "", key=key,
                    seed=int(tags["seed"]),
                    accuracy=100 * metrics["test_accuracy"],
                    student_params=int(metrics.get("student_params", 0)),
                    teacher_params=int(metrics.get("teacher_params", 0)),
                    size=tags.get("size", ""), trial_key=tags.get("trial_key", ""),
                    start_time=run.info.start_time or 0)


def group_runs(runs: Iterable[TrialRun]) -> dict[GroupKey, tuple[TrialRun, ...]]:
    """Runs by configuration, each group sorted by seed."""
    groups: dict[GroupKey, list[TrialRun]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    return {key: tuple(sorted(group, key=lambda r: r.seed)) for key, group in groups.items()}


class Predictions:
    """Per-example test predictions (``index, label, prediction``) of runs, downloaded once each."""

    def __init__(self, client: MlflowClient, scratch: Path) -> None:
        self._client = client
        self._scratch = scratch
        self._cache: dict[str, pd.DataFrame | None] = {}

    def get(self, run_id: str) -> pd.DataFrame | None:
        """The run's predictions, or ``None`` when the artifact is missing or malformed."""
        if run_id not in self._cache:
            self._cache[run_id] = self._load(run_id)
        return self._cache[run_id]

    def _load(self, run_id: str) -> pd.DataFrame | None:
        destination = self._scratch / run_id
        destination.mkdir(parents=True, exist_ok=True)
        try:
            path = self._client.download_artifacts(run_id, tracking.PREDICTIONS_ARTIFACT,
                                                   str(destination))
            frame = pd.read_csv(path)
        except (MlflowException, OSError, ValueError):  # ValueError: pandas' empty/parse errors
            return None
        if not {"index", "label", "prediction"} <= set(frame.columns):
            return None
        return frame[["index", "label", "prediction"]]


# ----------------------------------------------------------------------------- table layout


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


def expected_keys(sweep: SweepData) -> set[GroupKey]:
    """Configurations a row is owed to even without runs: the original work's, in paper sweeps."""
    return {number.key() for number in ORIGINAL_WORK if number.stated} if sweep.is_paper else set()


def table1(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey]) -> Table:
    """Teachers, fine-tuned students, KD, MetaDistil, MetaDistil + additional teacher.

    Rows are implied by the sweep: every model used as a teacher, every student, KD for every
    single teacher and MetaDistil for every teacher set that was distilled from.
    """
    universe = set(groups) | expected
    teachers = teacher_models(universe)
    pairs = sorted({(k.teachers, k.student) for k in universe if k.method != FINETUNE})
    students = ({s for _, s in pairs} | {k.student for k in universe
                                         if k.method == FINETUNE and k.student not in teachers})
    kd = ({GroupKey(KD, t, s) for t, s in pairs if len(t) == 1}
          | {k for k in universe if k.method == KD and k.plain})
    layout = (
        ("Teachers", [GroupKey(FINETUNE, (), t) for t in sorted(teachers)]),
        ("Fine-tuned students", [GroupKey(FINETUNE, (), s) for s in sorted(students)]),
        ("KD", sorted(kd)),
        ("MetaDistil", [GroupKey(METADISTIL, t, s) for t, s in pairs if len(t) == 1]),
        ("MetaDistil + additional teacher",
         [GroupKey(METADISTIL, t, s) for t, s in pairs if len(t) > 1]),
    )
    sections = tuple(Section(title, tuple(Row(base_label(k, teachers), k, groups.get(k, ()))
                                          for k in keys))
                     for title, keys in layout if keys)
    return Table("table1", 1, "SST-2 test accuracy of teachers, fine-tuned students, KD and "
                 "MetaDistil", sections, "no runs in this sweep")


def variant_table(number: int, title: str, groups: dict[GroupKey, tuple[TrialRun, ...]],
                  expected: set[GroupKey], is_variant: Callable[[GroupKey], bool],
                  base_of: Callable[[GroupKey], GroupKey],
                  variant_label: Callable[[GroupKey], str], empty_note: str) -> Table:
    """One block per base configuration: the base row (full label), then its variants."""
    universe = set(groups) | expected
    teachers = teacher_models(universe)
    variants = sorted(k for k in universe if is_variant(k))
    bases = sorted({base_of(k) for k in variants})
    sections = tuple(
        Section("", (Row(full_label(base, teachers), base, groups.get(base, ())),
                     *(Row(variant_label(k), k, groups.get(k, ()))
                       for k in variants if base_of(k) == base)))
        for base in bases)
    return Table(f"table{number}", number, title, sections, empty_note)


def table2(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey]) -> Table:
    return variant_table(2, "Distillation with and without warm start", groups,
                         expected, lambda k: k.warmup_epochs > 0,
                         lambda k: replace(k, warmup_epochs=0),
                         lambda k: warm_label(k.warmup_epochs), "no warm-start runs in this sweep")


def table3(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey]) -> Table:
    return variant_table(3, "Distillation with and without noise injection",
                         groups, expected, lambda k: k.noise_p > 0,
                         lambda k: replace(k, noise_p=0.0),
                         lambda k: noise_label(k.noise_p), "no noise-injection runs in this sweep")


# ---------------------------------------------------------------------------------- numbers


def largest_teacher_params(runs: Iterable[TrialRun], teachers: set[str]) -> int:
    """The sweep's largest teacher: distilled runs' ``teacher_params`` or the teachers' own size."""
    return max((r.teacher_params if r.key.method != FINETUNE else r.student_params
                for r in runs if r.key.method != FINETUNE or r.key.student in teachers), default=0)


def row_cells(row: Row, teachers: set[str], sweep_teacher_params: int,
              predictions: Predictions, paper: bool) -> Cells:
    """Accuracy over seeds, its interval, parameters and Times Smaller for one row.

    Interval: Student t over seeds when there are ≥ 2; with one seed, Wilson over the run's test
    examples (``over_test_examples``). Times Smaller = the row's largest teacher ÷ the student
    (``teacher_params`` of the runs; for fine-tuned students the sweep's largest teacher);
    teacher rows have none.
    """
    original = _original(row.key) if paper else None
    if not row.runs:
        return Cells(None, None, False, None, None, original)
    accuracies = [run.accuracy for run in row.runs]
    summary = stats.mean_std(accuracies)
    over_test_examples = summary.n == 1
    interval = (_test_interval(predictions.get(row.runs[0].run_id)) if over_test_examples
                else stats.t_interval(accuracies))
    if interval is not None:  # an accuracy lies in [0, 100]; with 2 seeds the t interval need not
        interval = (max(interval[0], 0.0), min(interval[1], 100.0))
    params = row.runs[0].student_params or None
    basis = max(run.teacher_params for run in row.runs) or sweep_teacher_params
    is_teacher = row.key.method == FINETUNE and row.key.student in teachers
    times = basis / params if params and basis and not is_teacher else None
    return Cells(summary, interval, over_test_examples, params, times, original)


def _test_interval(frame: pd.DataFrame | None) -> tuple[float, float] | None:
    if frame is None or frame.empty:
        return None
    correct = int((frame["label"] == frame["prediction"]).sum())
    low, high = stats.wilson_interval(correct, len(frame))
    return 100 * low, 100 * high


def _original(key: GroupKey) -> OriginalNumber | None:
    return next((number for number in ORIGINAL_WORK if number.matches(key)), None)


def comparisons(tables: Sequence[Table], groups: dict[GroupKey, tuple[TrialRun, ...]],
                teachers: set[str], predictions: Predictions) -> list[RowTests]:
    """Every distilled configuration with runs against the fine-tuned student (does distilling
    help at all?) and, but KD itself, against KD with the same teacher(s) and student (no noise, no
    warm start); each paired on the seeds both rows have."""
    seen: set[GroupKey] = set()
    result = []
    for row in (row for table in tables for row in table.rows):
        if row.key.method == FINETUNE or not row.runs or row.key in seen:
            continue
        seen.add(row.key)
        row = replace(row, label=full_label(row.key, teachers))

        def against(key: GroupKey, what: str) -> Comparison:
            return compare(row, Row(full_label(key, teachers), key, groups.get(key, ())), predictions, what)

        kd_key = GroupKey(KD, row.key.teachers, row.key.student)
        result.append(RowTests(against(GroupKey(FINETUNE, (), row.key.student), "fine-tuned baseline"),
                               None if row.key == kd_key else against(kd_key, "KD baseline")))
    return result


def compare(row: Row, baseline: Row, predictions: Predictions, what: str = "KD baseline") -> Comparison:
    """Pool the per-example correctness of both rows over their common seeds, then test.

    Seed s of the row is paired with seed s of the baseline (same data split and test examples);
    examples are matched on ``index``. Δ = accuracy(row) − accuracy(baseline).
    """
    if not baseline.runs:
        return Comparison(row, baseline, (), None, None, f"{what} not run")
    by_seed = {run.seed: run for run in baseline.runs}
    pairs = [(run, by_seed[run.seed]) for run in row.runs if run.seed in by_seed]
    if not pairs:
        return Comparison(row, baseline, (), None, None, f"no seed in common with the {what}")
    correct_row, correct_base = [], []
    for run, base in pairs:
        mine, theirs = predictions.get(run.run_id), predictions.get(base.run_id)
        if mine is None or theirs is None:
            missing = run.run_id if mine is None else base.run_id
            return Comparison(row, baseline, (), None, None,
                              f"no {tracking.PREDICTIONS_ARTIFACT} in run {missing}")
        joined = mine.merge(theirs, on="index", suffixes=("_a", "_b"))
        if joined.empty or not (joined["label_a"] == joined["label_b"]).all():
            return Comparison(row, baseline, (), None, None,
                              f"seed {run.seed}: the two runs were tested on different examples")
        correct_row.append(joined["prediction_a"] == joined["label_a"])
        correct_base.append(joined["prediction_b"] == joined["label_b"])
    a = np.concatenate(correct_row)
    b = np.concatenate(correct_base)
    return Comparison(row, baseline, tuple(run.seed for run, _ in pairs),
                      stats.paired_bootstrap(a, b, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
                      stats.mcnemar_exact(a, b), "")


# ---------------------------------------------------------------------------------- display


def format_accuracy(summary: stats.Summary | None) -> str:
    """``93.10 ± 0.25 (n=3)``; one seed has no spread: ``93.10 (n=1)``."""
    if summary is None:
        return NOT_RUN
    if summary.n == 1:
        return f"{summary.mean:.2f} (n=1)"
    return f"{summary.mean:.2f} ± {summary.std:.2f} (n={summary.n})"


def format_interval(cells: Cells) -> str:
    if cells.summary is None:
        return NOT_RUN
    if cells.interval is None:
        return "–"
    mark = " †" if cells.over_test_examples else ""
    return f"[{cells.interval[0]:.2f}, {cells.interval[1]:.2f}]{mark}"


def format_original(number: OriginalNumber | None) -> str:
    if number is None:
        return "–"
    return f"{number.accuracy:.2f}{'' if number.stated else ' ‡'}"


def format_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def table_cells(row: Row, cells: Cells, paper: bool) -> list[str]:
    """The display cells of one row, in TABLE_HEADERS order (+ original work, + runs)."""
    out = [row.label, format_accuracy(cells.summary), format_interval(cells),
           f"{cells.params:,}" if cells.params else ("–" if row.runs else NOT_RUN),
           f"{cells.times_smaller:.1f}×" if cells.times_smaller else ("–" if row.runs else NOT_RUN)]
    if paper:
        out.append(format_original(cells.original))
    out.append(", ".join(run.run_id[:8] for run in row.runs) or NOT_RUN)
    return out


TABLE_CSV_COLUMNS = ("section", "method", "status", "config_method", "teachers", "student",
                     "noise_p", "warmup_epochs", "accuracy_mean", "accuracy_std", "n", "ci_low",
                     "ci_high", "ci_kind", "params", "times_smaller", "seeds", "run_ids")


def table_csv(table: Table, cells: dict[Row, Cells], paper: bool) -> pd.DataFrame:
    """Machine-readable Table: numbers unformatted, full run ids (``;``-separated)."""
    records = []
    for section in table.sections:
        for row in section.rows:
            c = cells[row]
            record = {
                "section": section.title, "method": row.label,
                "status": "run" if row.runs else NOT_RUN, "config_method": row.key.method,
                "teachers": tracking.teachers_tag(row.key.teachers),
                "student": row.key.student, "noise_p": row.key.noise_p,
                "warmup_epochs": row.key.warmup_epochs,
                "accuracy_mean": c.summary.mean if c.summary else None,
                "accuracy_std": c.summary.std if c.summary else None,
                "n": c.summary.n if c.summary else 0,
                "ci_low": c.interval[0] if c.interval else None,
                "ci_high": c.interval[1] if c.interval else None,
                "ci_kind": ("" if not c.interval else
                            "wilson_test_examples" if c.over_test_examples else "t_over_seeds"),
                "params": c.params, "times_smaller": c.times_smaller,
                "seeds": ";".join(str(run.seed) for run in row.runs),
                "run_ids": ";".join(run.run_id for run in row.runs)}
            if paper:
                record["original_work"] = c.original.accuracy if c.original else None
            records.append(record)
    columns = [*TABLE_CSV_COLUMNS, *(["original_work"] if paper else [])]
    # Nullable integers: a "not run" row must not turn the parameter counts into floats.
    return pd.DataFrame.from_records(records, columns=columns).astype({"params": "Int64"})


def markdown_table(headers: Sequence[str], sections: Sequence[tuple[str, list[list[str]]]]) -> str:
    """A GitHub Markdown table; a titled section opens with an italic row."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    for title, rows in sections:
        if title:
            lines.append("| " + " | ".join([f"*{title}*"] + [""] * (len(headers) - 1)) + " |")
        lines.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


LATEX_CHARACTERS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#",
                    "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                    "^": r"\textasciicircum{}", "±": r"$\pm$", "→": r"$\rightarrow$",
                    "×": r"$\times$", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "–": "--",
                    "Δ": r"$\Delta$", "÷": r"$\div$", "≥": r"$\geq$", "−": "$-$",
                    "“": "``", "”": "''"}


def latex_escape(text: str) -> str:
    """Character by character, so that one replacement never re-escapes another's output."""
    return "".join(LATEX_CHARACTERS.get(ch, ch) for ch in text)


def latex_table(caption: str, label: str, headers: Sequence[str],
                sections: Sequence[tuple[str, list[list[str]]]], notes: Sequence[str]) -> str:
    """A booktabs table: ``\\toprule``, ``\\midrule`` between sections, ``\\bottomrule``."""
    width = len(headers)
    lines = [r"% Generated by python -m orchestrator.report; needs \usepackage{booktabs}.",
             r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}",
             r"\begin{tabular}{l" + "r" * (width - 1) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in headers) + r" \\"]
    for title, rows in sections:
        lines.append(r"\midrule")
        if title:
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{latex_escape(title)}}}}} \\")
        lines.extend(" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows)
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\smallskip\footnotesize {latex_escape(note)}" for note in notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def display_sections(table: Table, cells: dict[Row, Cells],
                     paper: bool) -> list[tuple[str, list[list[str]]]]:
    width = len(TABLE_HEADERS) + (2 if paper else 1)
    if not table.sections:
        return [("", [[table.empty_note] + [NOT_RUN] * (width - 1)])]
    return [(section.title, [table_cells(row, cells[row], paper) for row in section.rows])
            for section in table.sections]


def table_notes(paper: bool, runs_column: bool) -> list[str]:
    """Footnotes of Tables 1–3; the LaTeX tables have no Runs column, so no note on it."""
    notes = [
        "Accuracy: SST-2 test accuracy in %, mean ± sample standard deviation over seeds "
        "(n seeds).",
        "95 % interval: Student t interval for the mean over seeds; † one seed: Wilson interval "
        "over that run's test examples instead.",
        "Times Smaller: parameters of the largest teacher ÷ parameters of the student (for a "
        "fine-tuned student, the largest teacher of the sweep); none for the teachers themselves.",
        "“not run”: the sweep has no finished run of that configuration.",
    ]
    if runs_column:
        notes.append("Runs: MLflow run ids (first 8 characters; full ids in the CSV and in "
                     "runs.csv).")
    if paper:
        notes.append("Original work: the single runs reported by Zhou et al. (2022) (DESIGN.md); "
                     "at 2,000 test examples a 95 % interval is about ±1.2 points. ‡ DESIGN.md "
                     "does not state that run's teacher set or noise probability: the number is "
                     "shown next to every matching row.")
    return notes


SIGNIFICANCE_HEADERS = ("Method", "Δ vs. fine-tuned student (points) [95 % CI]", "p vs. fine-tuned",
                        "vs. KD baseline", "Seeds", "Examples",
                        "Δ accuracy (points) [95 % CI]", "p (bootstrap)",
                        "Only this right / only KD right", "p (McNemar)", RUNS_HEADER)


SIGNIFICANCE_LATEX_HEADERS = ("Method", "Δ vs. fine-tuned student (points) [95 % CI]", "Seeds",
                              "Δ accuracy (points) [95 % CI]", "p (bootstrap)", "p (McNemar)")


def _difference(boot: stats.BootstrapResult) -> str:
    return f"{100 * boot.diff:+.2f} [{100 * boot.ci_low:+.2f}, {100 * boot.ci_high:+.2f}]"


def significance_cells(tests: RowTests) -> list[str]:
    ft, c = tests.finetuned, tests.kd
    vs_ft = ([_difference(ft.bootstrap), format_p(ft.bootstrap.p_value)] if ft.bootstrap
             else [ft.note, "–"])
    runs = ", ".join(r.run_id[:8] for r in (*tests.row.runs, *(c.baseline.runs if c else ())))
    if c is None:
        return [tests.row.label, *vs_ft, "– (is the KD baseline)", "–", "–", "–", "–", "–", "–", runs]
    if c.bootstrap is None or c.mcnemar is None:
        return [c.row.label, *vs_ft, c.baseline.label, "–", "–", c.note, "–", "–", "–", runs]
    boot = c.bootstrap
    return [c.row.label, *vs_ft, c.baseline.label, ", ".join(map(str, c.seeds)), f"{boot.n:,}",
            _difference(boot), format_p(boot.p_value), f"{c.mcnemar.a_only} / {c.mcnemar.b_only}",
            format_p(c.mcnemar.p_value), runs]


def significance_csv(items: Sequence[RowTests]) -> pd.DataFrame:
    records = []
    for tests in items:
        ft = tests.finetuned
        c = tests.kd or replace(ft, baseline=Row("", ft.row.key, ()), seeds=(), bootstrap=None,
                                mcnemar=None, note="is the KD baseline")
        boot, mc, ft_boot = c.bootstrap, c.mcnemar, ft.bootstrap
        records.append({
            "method": c.row.label, "finetuned_baseline": ft.baseline.label,
            "finetuned_diff_points": 100 * ft_boot.diff if ft_boot else None,
            "finetuned_ci_low_points": 100 * ft_boot.ci_low if ft_boot else None,
            "finetuned_ci_high_points": 100 * ft_boot.ci_high if ft_boot else None,
            "finetuned_p_bootstrap": ft_boot.p_value if ft_boot else None,
            "finetuned_p_mcnemar": ft.mcnemar.p_value if ft.mcnemar else None,
            "finetuned_note": ft.note, "baseline": c.baseline.label,
            "seeds": ";".join(map(str, c.seeds)), "n_examples": boot.n if boot else None,
            "diff_points": 100 * boot.diff if boot else None,
            "ci_low_points": 100 * boot.ci_low if boot else None,
            "ci_high_points": 100 * boot.ci_high if boot else None,
            "p_bootstrap": boot.p_value if boot else None,
            "only_method_correct": mc.a_only if mc else None,
            "only_baseline_correct": mc.b_only if mc else None,
            "p_mcnemar": mc.p_value if mc else None, "note": c.note,
            "run_ids": ";".join(r.run_id for r in c.row.runs),
            "baseline_run_ids": ";".join(r.run_id for r in c.baseline.runs)})
    return pd.DataFrame.from_records(records, columns=[
        "method", "finetuned_baseline", "finetuned_diff_points", "finetuned_ci_low_points",
        "finetuned_ci_high_points", "finetuned_p_bootstrap", "finetuned_p_mcnemar", "finetuned_note",
        "baseline", "seeds", "n_examples", "diff_points", "ci_low_points",
        "ci_high_points", "p_bootstrap", "only_method_correct", "only_baseline_correct",
        "p_mcnemar", "note", "run_ids", "baseline_run_ids"]).astype(
        {"n_examples": "Int64", "only_method_correct": "Int64", "only_baseline_correct": "Int64"})


SIGNIFICANCE_NOTES = (
    f"Paired tests on the per-example test predictions ({tracking.PREDICTIONS_ARTIFACT}): seed s "
    "of a row is paired with seed s of the fine-tuned student, and of the KD row with the same "
    "teacher(s) and student (no noise, no warm start); examples are matched by index and pooled "
    "over the common seeds.",
    f"Δ = accuracy(row) − accuracy(baseline); 95 % CI and two-sided p from a paired bootstrap "
    f"({BOOTSTRAP_RESAMPLES:,} resamples of the pooled examples, seed {BOOTSTRAP_SEED}; "
    f"p ≥ 1/{BOOTSTRAP_RESAMPLES + 1:,}). McNemar: exact binomial test on the examples only one "
    "of the two gets right. Pooling treats examples as independent across seeds; the spread over "
    "seeds is in the tables.",
)


# ------------------------------------------------------------------------------------ plots


def plot_accuracy_vs_params(rows: Sequence[tuple[Row, Cells]], path: Path) -> None:
    """Mean test accuracy against the student's parameters (log x), error bars = std over seeds.

    Many rows share a student, so many points share an x: each point gets a number, points at one
    x are spread a little sideways, and the numbers are keyed to the rows' names beside the axes.
    """
    points = [(row, cells) for row, cells in rows if cells.summary is not None and cells.params]
    figure = Figure(figsize=(11, max(4.5, 1.2 + 0.22 * len(points))), layout="constrained")
    axes, key = figure.subplots(1, 2, width_ratios=[3, 2])
    by_x: dict[int, int] = {}
    for row, cells in points:
        by_x[cells.params] = by_x.get(cells.params, 0) + 1
    seen: dict[int, int] = {}
    labelled: set[str] = set()
    lines = []
    for number, (row, cells) in enumerate(points, start=1):
        method = row.key.method
        name = METHOD_NAMES.get(method, method)
        std = 0.0 if math.isnan(cells.summary.std) else cells.summary.std
        crowd, place = by_x[cells.params], seen.get(cells.params, 0)
        seen[cells.params] = place + 1
        x = cells.params * 10 ** (0.02 * (place - (crowd - 1) / 2))  # 4.7 % apart
        axes.errorbar(x, cells.summary.mean, yerr=std, capsize=3, linestyle="none",
                      marker=METHOD_MARKERS.get(method, "o"), color=_method_colour(method),
                      label=None if name in labelled else name)
        labelled.add(name)
        axes.annotate(str(number), (x, cells.summary.mean), fontsize=7, textcoords="offset points",
                      xytext=(3, 4 if place % 2 == 0 else -11))  # neighbours' numbers above, below
        lines.append(f"{number:>2}  {row.label}: {cells.summary.mean:.1f}")
    axes.set_xscale("log")
    axes.set_xlabel("No. of parameters (student; log scale; points of one size set apart)")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title("Accuracy vs. parameters (mean ± std over seeds)")
    axes.grid(True, which="both", alpha=0.3)
    if labelled:
        axes.legend(title="Method", fontsize=8)
    key.axis("off")
    key.text(0, 1, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7,
             transform=key.transAxes)
    _save(figure, path)


def plot_val_accuracy(histories: dict[Row, dict[int, list[float]]], path: Path) -> None:
    """Validation accuracy per epoch, one panel per method, one line per configuration
    (mean over seeds; band = ± std where there are ≥ 2 seeds)."""
    methods = sorted({row.key.method for row in histories}) or [FINETUNE]
    figure = Figure(figsize=(5 * len(methods), 4.5), layout="constrained")
    panels = figure.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    for axes, method in zip(panels, methods):
        for row, by_epoch in histories.items():
            if row.key.method != method:
                continue
            epochs = sorted(by_epoch)
            means = np.array([np.mean(by_epoch[e]) for e in epochs])
            stds = np.array([np.std(by_epoch[e], ddof=1) if len(by_epoch[e]) > 1 else 0.0
                             for e in epochs])
            line, = axes.plot(epochs, means, marker="o", markersize=3, label=row.label)
            axes.fill_between(epochs, means - stds, means + stds, color=line.get_color(),
                              alpha=0.15)
        axes.set_title(METHOD_NAMES.get(method, method))
        axes.set_xlabel("Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        if axes.has_data():
            axes.legend(fontsize=6)
    panels[0].set_ylabel("Validation accuracy (%)")
    _save(figure, path)


def val_histories(client: MlflowClient,
                  rows: Iterable[Row]) -> dict[Row, dict[int, list[float]]]:
    """``val_accuracy`` (%) by epoch for each row with runs, one value per seed."""
    result: dict[Row, dict[int, list[float]]] = {}
    for row in rows:
        by_epoch: dict[int, list[float]] = {}
        for run in row.runs:
            for metric in client.get_metric_history(run.run_id, "val_accuracy"):
                by_epoch.setdefault(metric.step, []).append(100 * metric.value)
        if by_epoch:
            result[row] = by_epoch
    return result


def _method_colour(method: str) -> str:
    return {FINETUNE: "tab:gray", KD: "tab:blue", METADISTIL: "tab:red"}.get(method, "tab:green")


def _save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=150)


# ----------------------------------------------------------------------------------- report


def build_report(client: MlflowClient, sweep: str, out_dir: Path) -> ReportResult:
    """Read the sweep from MLflow and write every table, plot and the README into ``out_dir``."""
    data = load_sweep(client, sweep)
    groups = group_runs(data.runs)
    expected = expected_keys(data)
    tables = [table1(groups, expected), table2(groups, expected), table3(groups, expected)]
    teachers = teacher_models(set(groups) | expected)
    sweep_teacher = largest_teacher_params(data.runs, teachers)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="report-") as scratch, no_progress_bars():
        predictions = Predictions(client, Path(scratch))
        cells = {row: row_cells(row, teachers, sweep_teacher, predictions, data.is_paper)
                 for table in tables for row in table.rows}
        significance = comparisons(tables, groups, teachers, predictions)
    markdown = {t.name: _write_table(t, cells, data.is_paper, out_dir, files) for t in tables}
    significance_md = _write_significance(significance, out_dir, files)
    files.append(_write_csv(runs_frame(tables, teachers), out_dir / "runs.csv"))
    unique_rows = _unique_rows_with_runs(tables, cells, teachers)
    plots = {"accuracy_vs_params": out_dir / "plots" / "accuracy_vs_params.png",
             "val_accuracy": out_dir / "plots" / "val_accuracy_per_epoch.png"}
    plot_accuracy_vs_params(unique_rows, plots["accuracy_vs_params"])
    plot_val_accuracy(val_histories(client, [row for row, _ in unique_rows]), plots["val_accuracy"])
    files.extend(plots.values())
    warnings = _warnings(data, groups, tables, teachers)
    readme = out_dir / "README.md"
    readme.write_text(readme_text(data, client.tracking_uri, tables, markdown, significance_md,
                                  warnings), encoding="utf-8")
    files.append(readme)
    return ReportResult(sweep, out_dir, tuple(files), markdown["table1"], tuple(warnings))


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """MLflow draws a progress bar per downloaded artifact: dozens of them in a sweep's log."""
    variable = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(variable)
    os.environ[variable] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous


def _write_table(table: Table, cells: dict[Row, Cells], paper: bool, out_dir: Path,
                 files: list[Path]) -> str:
    headers = [*TABLE_HEADERS, *([ORIGINAL_HEADER] if paper else [])]
    sections = display_sections(table, cells, paper)
    markdown = markdown_table([*headers, RUNS_HEADER], sections)
    latex_sections = [(title, [row[:-1] for row in rows]) for title, rows in sections]
    (out_dir / f"{table.name}.md").write_text(f"**{table.heading}**\n\n{markdown}",
                                              encoding="utf-8")
    (out_dir / f"{table.name}.tex").write_text(
        latex_table(table.title, f"tab:{table.name}", headers, latex_sections,
                    table_notes(paper, runs_column=False)),
        encoding="utf-8")
    files.extend([out_dir / f"{table.name}.md", out_dir / f"{table.name}.tex",
                  _write_csv(table_csv(table, cells, paper), out_dir / f"{table.name}.csv")])
    return markdown


def _write_significance(items: Sequence[RowTests], out_dir: Path, files: list[Path]) -> str:
    rows = [significance_cells(c) for c in items]
    if not rows:
        rows = [["no distilled configuration with runs"] + ["–"] * (len(SIGNIFICANCE_HEADERS) - 1)]
    markdown = markdown_table(SIGNIFICANCE_HEADERS, [("", rows)])
    (out_dir / "significance.md").write_text(
        f"**Significance: each distilled configuration against its fine-tuned student and against "
        f"KD**\n\n{markdown}",
        encoding="utf-8")
    # A paper page has room for five columns; the baseline is in the caption, the counts in the CSV.
    pick = [SIGNIFICANCE_HEADERS.index(h) for h in SIGNIFICANCE_LATEX_HEADERS]
    (out_dir / "significance.tex").write_text(
        latex_table("Paired tests against the fine-tuned student and against KD with the same "
                    "teacher(s) and student",
                    "tab:significance", SIGNIFICANCE_LATEX_HEADERS,
                    [("", [[r[i] for i in pick] for r in rows])], SIGNIFICANCE_NOTES),
        encoding="utf-8")
    files.extend([out_dir / "significance.md", out_dir / "significance.tex",
                  _write_csv(significance_csv(items), out_dir / "significance.csv")])
    return markdown


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def runs_frame(tables: Sequence[Table], teachers: set[str]) -> pd.DataFrame:
    """One line per (table row, run): the run ids behind every cell."""
    records = [{"table": table.name, "row": row.label,
                "configuration": full_label(row.key, teachers), "seed": run.seed,
                "run_id": run.run_id,
                "run_name": run.run_name, "test_accuracy": run.accuracy,
                "student_params": run.student_params, "teacher_params": run.teacher_params}
               for table in tables for row in table.rows for run in row.runs]
    return pd.DataFrame.from_records(records, columns=[
        "table", "row", "configuration", "seed", "run_id", "run_name", "test_accuracy",
        "student_params", "teacher_params"])


def _unique_rows_with_runs(tables: Sequence[Table], cells: dict[Row, Cells],
                           teachers: set[str]) -> list[tuple[Row, Cells]]:
    """Each configuration once (a base row of Table 2 may also be a Table 1 row), under its full
    label: in a plot "+ noise p=0.1" has no row above it to read the rest from."""
    rows: dict[GroupKey, tuple[Row, Cells]] = {}
    for row in (row for table in tables for row in table.rows if row.runs):
        rows.setdefault(row.key, (replace(row, label=full_label(row.key, teachers)), cells[row]))
    return list(rows.values())


def _warnings(data: SweepData, groups: dict[GroupKey, tuple[TrialRun, ...]],
              tables: Sequence[Table], teachers: set[str]) -> list[str]:
    shown = {row.key for table in tables for row in table.rows}
    warnings = list(data.skipped)
    warnings += [f"{len(groups[k])} run(s) of {full_label(k, teachers)} (method {k.method!r}) "
                 f"are in no table" for k in sorted(set(groups) - shown)]
    if data.unfinished:
        warnings.append(f"{data.unfinished} trial run(s) not FINISHED (running, failed or "
                        f"killed) are left out")
    return warnings


def _time_taken(span_ms: tuple[int, int | None] | None) -> str:
    """The sweep run's wall time (a resumed sweep's run spans its interruptions too)."""
    if not span_ms or not span_ms[1]:
        return ""
    start, end = (datetime.fromtimestamp(t / 1000, timezone.utc) for t in span_ms)
    return (f"- Time: {(end - start).total_seconds() / 60:.0f} min, from {start:%Y-%m-%d %H:%M} to "
            f"{end:%H:%M} UTC (the sweep run: Ray's start to the last trial; a resumed sweep spans its "
            "interruptions)")


def readme_text(data: SweepData, tracking_uri: str, tables: Sequence[Table],
                markdown: dict[str, str], significance_md: str, warnings: Sequence[str]) -> str:
    """``results/<sweep>/README.md``: provenance, the tables, the plots, the footnotes."""
    seeds = sorted({run.seed for run in data.runs})
    sizes = sorted({run.size for run in data.runs if run.size})
    uri = _without_credentials(tracking_uri)
    uri_option = "" if tracking_uri == paths.DEFAULT_TRACKING_URI else f" --tracking-uri {uri}"
    provenance = [
        f"- Regenerate: `python -m orchestrator.report --sweep {data.name}{uri_option}`",
        f"- MLflow: `{uri}`, experiment `{data.name}` (id {data.experiment.experiment_id})"
        + (f", sweep run `{data.parent_run_id}`" if data.parent_run_id else ""),
        f"- Sweep command: `{data.tags['command']}`" if "command" in data.tags else
        "- Sweep command: not recorded (no `command` tag on the sweep run)",
        f"- Machine: {data.tags['machine']}" if "machine" in data.tags else
        "- Machine: not recorded (no `machine` tag on the sweep run)",
        f"- Search space: `{data.tags['space']}`" if "space" in data.tags else "",
        f"- Runs: {len(data.runs)} finished trial runs, seeds {', '.join(map(str, seeds))}"
        + (f"; model size: {', '.join(sizes)}" if sizes else ""),
        _time_taken(data.span_ms),
    ]
    parts = [f"# Sweep `{data.name}`: results\n",
             "Tables and plots regenerated from the MLflow runs of this sweep (never from Ray's "
             "folders). Every number can be traced to its MLflow runs: the Runs column, the "
             "`run_ids` column of each CSV, and [runs.csv](runs.csv).\n",
             "\n".join(line for line in provenance if line) + "\n"]
    for table in tables:
        parts.append(f"## {table.heading}\n\n{markdown[table.name]}\n"
                     f"Files: [{table.name}.md]({table.name}.md) · [{table.name}.csv]"
                     f"({table.name}.csv) · [{table.name}.tex]({table.name}.tex)\n")
    parts.append("## Significance against the fine-tuned student and KD\n\n" + significance_md + "\n"
                 + "\n".join(f"- {note}" for note in SIGNIFICANCE_NOTES)
                 + "\n\nFiles: [significance.csv](significance.csv) · "
                   "[significance.tex](significance.tex)\n")
    parts.append("## Plots\n\n"
                 "[Accuracy vs. parameters](plots/accuracy_vs_params.png): a marker per method, "
                 "error bars = std over seeds.\n\n![Accuracy vs. parameters]"
                 "(plots/accuracy_vs_params.png)\n\n"
                 "[Validation accuracy per epoch](plots/val_accuracy_per_epoch.png): mean over "
                 "seeds, band = ± std.\n\n![Validation accuracy per epoch]"
                 "(plots/val_accuracy_per_epoch.png)\n")
    notes = table_notes(data.is_paper, runs_column=True)
    parts.append("## Notes\n\n" + "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1)) + "\n")
    if warnings:
        parts.append("## Warnings\n\n" + "\n".join(f"- {w}" for w in warnings) + "\n")
    return "\n".join(parts)


def _without_credentials(uri: str) -> str:
    """The README is committed: ``https://user:token@host`` must not end up in it."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# -------------------------------------------------------------------------------------- CLI


def check_tracking_uri(uri: str) -> None:
    """Fail fast, in one line, when the store cannot be reached (instead of MLflow's retries or
    MLflow creating an empty SQLite file where the user mistyped a path)."""
    if uri.startswith(("http://", "https://")):
        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S)
        except requests.RequestException as err:
            raise ReportError(f"cannot reach MLflow tracking server {uri} "
                              f"({type(err).__name__})") from err
    elif uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        if not database.is_file():
            raise ReportError(f"no MLflow database at {database}; run a sweep first "
                              f"(python -m orchestrator.sweep --name NAME) or pass --tracking-uri")
    elif uri.startswith("file:") or "://" not in uri:
        folder = Path(uri.removeprefix("file://").removeprefix("file:"))
        if not folder.is_dir():
            raise ReportError(f"no MLflow file store at {folder}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.report",
        description="Regenerate Tables 1-3, significance tests and plots of a sweep from MLflow.")
    parser.add_argument("--sweep", help="sweep (= MLflow experiment) name; default: the only one")
    parser.add_argument("--tracking-uri", default=paths.DEFAULT_TRACKING_URI,
                        help=f"MLflow tracking URI (default: {paths.DEFAULT_TRACKING_URI})")
    parser.add_argument("--out", type=Path, help="output folder (default: results/<sweep>/)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 on success; 2 with one line on stderr for bad input."""
    args = parse_args(argv)
    try:
        check_tracking_uri(args.tracking_uri)
        client = MlflowClient(tracking_uri=args.tracking_uri)
        sweep = resolve_sweep(client, args.sweep)
        result = build_report(client, sweep, args.out or paths.RESULTS_DIR / sweep)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except MlflowException as err:
        print(f"error: MLflow: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        return 2
    print(summary_text(result))
    return 0


def summary_text(result: ReportResult) -> str:
    lines = [f"Report for sweep {result.sweep!r} written to {result.out_dir}:"]
    lines += [f"  {path.relative_to(result.out_dir)}" for path in result.files]
    lines += ["", result.table1_markdown]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
