"""Tables 1–3: which rows a sweep owes, which runs fill them, and the numbers of each row.

- Table 1: the teachers, the fine-tuned students, KD, MetaDistil, MetaDistil + additional teacher;
- Table 2: each distilled configuration with and without a warm start;
- Table 3: each distilled configuration with and without noise injection.

Rows come from whatever runs exist plus the rows the sweep implies (every teacher, every student,
KD and MetaDistil for every teacher set that was distilled, and for paper sweeps every
configuration of the original work, whose single-run numbers (DESIGN.md) sit in a side column); a
row without runs says "not run". A row's numbers (:class:`Cells`) are computed here and shown by
:mod:`orchestrator.report.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from orchestrator import stats
from orchestrator.report.labels import base_label, full_label, noise_label, teacher_models, warm_label
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import FINETUNE, KD, METADISTIL, GroupKey, SweepData, TrialRun

if TYPE_CHECKING:  # only named in an annotation: the frames come from Predictions
    import pandas as pd


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
