"""Tables 1–3: which rows a sweep owes, which runs fill them, and the numbers of each row.

- Table 1: the teachers, the fine-tuned students, KD, MetaDistil, MetaDistil + additional teacher;
- Table 2: each distilled configuration with and without a warm start;
- Table 3: each distilled configuration with and without noise injection.

Rows come from whatever runs exist plus the rows the sweep implies (every teacher, every student,
KD and MetaDistil for every teacher set that was distilled, and for paper sweeps every
configuration of the original work, whose single-run numbers (DESIGN.md) sit in a side column),
within each recipe the sweep's runs used; a row without runs says "not run". Configurations that
differ in any field of :class:`GroupKey` (the teachers' noise, MetaDistil's ``meta_every``, the
recipe included) are separate rows, in :class:`GroupKey` order; in a random search a row's runs
are its configuration's best sample's (:mod:`orchestrator.report.search`). A row's numbers
(:class:`Cells`) are computed here and shown by :mod:`orchestrator.report.render`: each of the
task's metrics over seeds, the main one first (:mod:`orchestrator.report.metrics`), and the main
one's 95 % interval.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from orchestrator.report import stats
from orchestrator.report.labels import (
    SweepNames,
    cohort_label,
    full_label,
    method_name,
    model_name,
    noise_label,
    warm_label,
    with_recipe,
)
from orchestrator.report.metrics import ACCURACY, SST2, TaskMetrics, run_value
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import DEFAULT_RECIPE, GroupKey, SweepData, TrialRun, is_baseline
from trainers.methods import registry as methods

if TYPE_CHECKING:  # only named in an annotation: the frames come from Predictions
    import pandas as pd

# The one-seed interval of F1 or Matthews' correlation over the test examples: fixed, so that a
# report regenerated from the same runs is the same.
TEST_BOOTSTRAP_RESAMPLES = 10_000
TEST_BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class OriginalNumber:
    """One accuracy (%) of the original work (``original_work.yaml``). ``teachers=None`` or ``noisy=True``
    mark what DESIGN.md leaves unstated (the teacher set; the noise probability): such a number is
    shown next to every row that matches the rest, with a footnote. It is shown beside the rows of
    every recipe, but never beside MetaDistil on every k-th batch only (not the original's method)."""

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
                and (key.noise_p > 0) == self.noisy and key.warmup_epochs == self.warmup_epochs
                and key.meta_every == 1)

    def key(self, recipe: str) -> GroupKey:
        return GroupKey(self.method, self.teachers or (), self.student, 0.0, self.warmup_epochs,
                        recipe=recipe)


ORIGINAL_FILE = Path(__file__).with_name("original_work.yaml")


@cache
def original_work() -> tuple[OriginalNumber, ...]:
    """The original work's numbers (``original_work.yaml``: data, like a search space)."""
    entries = yaml.safe_load(ORIGINAL_FILE.read_text(encoding="utf-8"))
    numbers = []
    for entry in entries:  # teachers: absent = none (a fine-tune), null = unstated
        teachers = entry.get("teachers", [])
        numbers.append(OriginalNumber(**{**entry, "teachers": None if teachers is None else tuple(teachers)}))
    return tuple(numbers)


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
    task: TaskMetrics = SST2  # whose metrics head the columns

    @property
    def heading(self) -> str:
        """``Table 1: …`` for Markdown; LaTeX numbers its captions itself."""
        return f"Table {self.number}: {self.title}"

    @property
    def rows(self) -> list[Row]:
        return [row for section in self.sections for row in section.rows]


@dataclass(frozen=True)
class Cells:
    """The numbers of one table row; ``None`` where they cannot be computed. ``summary`` and
    ``interval``: the task's main metric; ``others``: its other metrics, in the task's order."""

    summary: stats.Summary | None
    interval: tuple[float, float] | None
    over_test_examples: bool
    params: int | None
    times_smaller: float | None
    original: OriginalNumber | None
    others: tuple[stats.Summary | None, ...] = ()


def expected_keys(sweep: SweepData) -> set[GroupKey]:
    """Configurations a row is owed to even without runs: the original work's, in paper sweeps,
    under each recipe the sweep's runs used."""
    if not sweep.is_paper:
        return set()
    recipes = {run.key.recipe for run in sweep.runs} or {DEFAULT_RECIPE}
    return {number.key(recipe) for number in original_work() if number.stated for recipe in recipes}


def table1(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey],
           names: SweepNames, task: TaskMetrics) -> Table:
    """Teachers, fine-tuned students, KD, MetaDistil, MetaDistil + additional teacher.

    Rows are implied by the sweep, within each recipe: every model used as a teacher, every
    student, KD for every single teacher and MetaDistil for every teacher set that was distilled
    from; and every plain (no noise, no warm start) KD and MetaDistil configuration that ran, such as
    MetaDistil on every k-th batch.
    """
    universe = set(groups) | expected
    baseline = methods.baseline().name
    distilled = {(k.teachers, k.student, k.recipe) for k in universe if _distils(k.method)}
    # A cohort's members (Table 5) are compared with their fine-tuned models too.
    finetuned = {(k.student, k.recipe) for k in universe if is_baseline(k.method) or k.cohort}
    # A teacher is trained once, under the sweep's recipe, and serves every block's recipe: its
    # row is owed under another recipe only when no fine-tune of it ran at all.
    trained = {(s, r) for s, r in finetuned if s in names.teachers}
    teachers = ({GroupKey(baseline, (), t, recipe=r) for ts, _, r in distilled for t in ts
                 if not any(s == t for s, _ in trained)}
                | {GroupKey(baseline, (), s, recipe=r) for s, r in trained})
    # A born-again student (the teacher's own model) has its baseline among the teachers.
    students = ({GroupKey(baseline, (), s, recipe=r) for _, s, r in distilled if s not in names.teachers}
                | {GroupKey(baseline, (), s, recipe=r) for s, r in finetuned if s not in names.teachers})
    layout: dict[str, set[GroupKey]] = {"Teachers": teachers, "Fine-tuned students": students}
    for method in (m for m in methods.registry().values() if m.distils):
        # A born-again pair (the student among its teachers) is owed only by the methods that ran it.
        rows = ({GroupKey(method.name, t, s, recipe=r) for t, s, r in distilled
                 if method.implied(t) and s not in t}
                | {k for k in universe if k.method == method.name and k.plain})
        # A method's sections in the order of their fewest teachers: "MetaDistil" before
        # "MetaDistil + additional teacher".
        for key in sorted(rows, key=lambda k: len(k.teachers)):
            layout.setdefault(method.section(key.teachers), set()).add(key)
    layout.pop("", None)  # a method that files no row in Table 1
    sections = tuple(Section(title, tuple(Row(full_label(k, names), k, groups.get(k, ()))
                                          for k in sorted(keys)))
                     for title, keys in layout.items() if keys)
    return Table("table1", 1, f"{task.title} test {task.words} of teachers, fine-tuned students, "
                 "KD and MetaDistil", sections, "no runs in this sweep", task)


def variant_table(number: int, title: str, groups: dict[GroupKey, tuple[TrialRun, ...]],
                  expected: set[GroupKey], names: SweepNames, is_variant: Callable[[GroupKey], bool],
                  base_of: Callable[[GroupKey], GroupKey],
                  variant_label: Callable[[GroupKey], str], empty_note: str,
                  task: TaskMetrics) -> Table:
    """One block per base configuration: the base row (full label), then its variants (the part
    that differs, and the recipe when the sweep names recipes). A task scored by more than
    accuracy says its task and metrics in the title (an SST-2 title stays as it was)."""
    universe = set(groups) | expected
    variants = sorted(k for k in universe if is_variant(k))
    bases = sorted({base_of(k) for k in variants})
    sections = tuple(
        Section("", (Row(full_label(base, names), base, groups.get(base, ())),
                     *(Row(with_recipe(variant_label(k), k, names), k, groups.get(k, ()))
                       for k in variants if base_of(k) == base)))
        for base in bases)
    if not task.accuracy_only:
        title = f"{title} ({task.title} test {task.words})"
    return Table(f"table{number}", number, title, sections, empty_note, task)


def table2(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey],
           names: SweepNames, task: TaskMetrics) -> Table:
    return variant_table(2, "Distillation with and without warm start", groups,
                         expected, names, lambda k: k.warmup_epochs > 0,
                         lambda k: replace(k, warmup_epochs=0),
                         lambda k: warm_label(k.warmup_epochs), "no warm-start runs in this sweep", task)


def table3(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey],
           names: SweepNames, task: TaskMetrics) -> Table:
    return variant_table(3, "Distillation with and without noise injection",
                         groups, expected, names, lambda k: k.noise_p > 0,
                         lambda k: replace(k, noise_p=0.0, noise_teachers=False),
                         noise_label, "no noise-injection runs in this sweep", task)


def table4(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey],
           names: SweepNames, task: TaskMetrics) -> Table | None:
    """Teacher assistants (Mirzadeh et al., AAAI 2020): each chain under its direct distillation
    of the same student, by the same method; ``None`` for a sweep without a chain (its report keeps
    the three tables it always had)."""
    if not any(k.assistants for k in set(groups) | expected):
        return None
    return variant_table(4, "Distillation through teacher assistants and direct", groups, expected,
                         names, lambda k: bool(k.assistants), lambda k: replace(k, assistants=()),
                         lambda k: "via " + "→".join(model_name(a) for a in k.assistants),
                         "no teacher-assistant runs in this sweep", task)


def table5(groups: dict[GroupKey, tuple[TrialRun, ...]], expected: set[GroupKey],
           names: SweepNames, task: TaskMetrics) -> Table | None:
    """Deep mutual learning (Zhang et al., CVPR 2018): each cohort member under the fine-tuned
    model of its architecture; ``None`` for a sweep without a cohort."""
    if not any(k.cohort for k in set(groups) | expected):
        return None
    baseline = methods.baseline().name
    return variant_table(5, "Deep mutual learning: each cohort member and its fine-tuned model",
                         groups, expected, names, lambda k: bool(k.cohort),
                         lambda k: GroupKey(baseline, (), k.student, recipe=k.recipe),
                         lambda k: f"{method_name(k)}, {cohort_label(k)}",
                         "no cohort runs in this sweep", task)


def _distils(method: str) -> bool:
    known = methods.known(method)
    return bool(known and known.distils)


@dataclass(frozen=True)
class TeacherBasis:
    """The numerator of Times Smaller: the sweep's distinct teacher models and the mean of their
    parameter counts (``None`` when some teacher's count is unknown, or there is no teacher)."""

    models: tuple[str, ...]
    mean_params: float | None


def teacher_basis(runs: Iterable[TrialRun]) -> TeacherBasis:
    """Times Smaller's numerator as the original work computes it (Zhou et al. 2022, Table 1): the
    mean parameter count of the sweep's distinct teacher models, one figure for every row of a
    student, whatever the row's teachers. mean(BERT 109,483,778, RoBERTa 124,647,170) =
    117,065,474: ÷ DistilBERT 66,955,010 = 1.7×, ÷ TinyBERT 14,350,874 = 8.2×.

    Every model in any run's teachers counts once. Its count is its own fine-tune run's
    ``student_params``; failing that, the ``teacher_params`` of a distillation from it alone
    (``teacher_params`` is the largest teacher's count, one model's only when all teachers are it).
    """
    runs = list(runs)
    models = tuple(sorted({teacher for run in runs for teacher in run.key.teachers}))
    counts: dict[str, int] = {}
    for run in runs:
        if is_baseline(run.key.method) and run.key.student in models and run.student_params:
            counts.setdefault(run.key.student, run.student_params)
    for run in runs:
        if len(set(run.key.teachers)) == 1 and run.teacher_params:
            counts.setdefault(run.key.teachers[0], run.teacher_params)
    known = bool(models) and all(model in counts for model in models)
    return TeacherBasis(models, statistics.fmean(counts[m] for m in models) if known else None)


def row_cells(row: Row, names: SweepNames, basis: TeacherBasis, predictions: Predictions,
              paper: bool, task: TaskMetrics) -> Cells:
    """Each of the task's metrics over seeds, the main one's interval, parameters and Times
    Smaller for one row.

    Interval of the main metric: Student t over seeds when there are ≥ 2; with one seed, over the
    run's test examples (``over_test_examples``): Wilson for accuracy, a percentile bootstrap
    (:func:`orchestrator.report.stats.bootstrap_interval`) for F1 and Matthews' correlation, which are
    no binomial share. Times Smaller = the mean parameter count of the sweep's teachers
    (:func:`teacher_basis`) ÷ the student's; teacher rows have none.
    """
    original = _original(row.key) if paper else None
    if not row.runs:
        return Cells(None, None, False, None, None, original)
    summaries = [_summary(row.runs, metric) for metric in task.metrics]
    values = [v for v in (run_value(run, task.main) for run in row.runs) if v is not None]
    summary = summaries[0]
    over_test_examples = summary is not None and summary.n == 1
    interval = (None if summary is None else
                _test_interval(predictions.get(row.runs[0].run_id), task.main) if over_test_examples
                else stats.t_interval(values))
    if interval is not None:  # e.g. an accuracy lies in [0, 100]; with 2 seeds the t interval need not
        low, high = task.bounds
        interval = (max(interval[0], low), min(interval[1], high))
    params = row.runs[0].student_params or None
    is_teacher = is_baseline(row.key.method) and row.key.student in names.teachers
    times = basis.mean_params / params if params and basis.mean_params and not is_teacher else None
    return Cells(summary, interval, over_test_examples, params, times, original, tuple(summaries[1:]))


def _summary(runs: Iterable[TrialRun], metric: str) -> stats.Summary | None:
    """Over the runs that logged the metric; ``None`` where none did."""
    values = [v for v in (run_value(run, metric) for run in runs) if v is not None]
    return stats.mean_std(values) if values else None


def _test_interval(frame: pd.DataFrame | None, metric: str) -> tuple[float, float] | None:
    if frame is None or frame.empty:
        return None
    if metric == ACCURACY:
        correct = int((frame["label"] == frame["prediction"]).sum())
        low, high = stats.wilson_interval(correct, len(frame))
    else:
        low, high = stats.bootstrap_interval(metric, frame["label"], frame["prediction"],
                                             TEST_BOOTSTRAP_RESAMPLES, TEST_BOOTSTRAP_SEED)
    return 100 * low, 100 * high


def _original(key: GroupKey) -> OriginalNumber | None:
    return next((number for number in original_work() if number.matches(key)), None)
