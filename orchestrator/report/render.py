"""Tables 1–3 as files: Markdown (GitHub), CSV (numbers unformatted, full run ids) and LaTeX
(booktabs), and the helpers the other tables share (the significance table:
:mod:`orchestrator.report.significance_table`); and ``runs.csv``, every run id behind every row.

The display cells of a row are formatted here, once, and the Markdown and LaTeX tables are made
from the same cells (LaTeX without the Runs column, which a paper page has no room for). The value
columns are the task's metrics, the main one first (:mod:`orchestrator.report.metrics`); an SST-2
table has accuracy alone, its columns as they always were.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from orchestrator.report import stats
from orchestrator.report.labels import SweepNames, full_label, model_name
from orchestrator.report.metrics import ACCURACY, TITLES, WORDS, TaskMetrics, run_value
from orchestrator.report.tables import (
    TEST_BOOTSTRAP_RESAMPLES,
    TEST_BOOTSTRAP_SEED,
    Cells,
    OriginalNumber,
    Row,
    Table,
    TeacherBasis,
)
from orchestrator.tracking import names as tracking

NOT_RUN = "not run"
TABLE_HEADERS = ("Method", "Accuracy (mean ± std, n)", "95 % interval", "No. of Parameters",
                 "Times Smaller")
ORIGINAL_HEADER = "Original work"
RUNS_HEADER = "Runs"


def table_headers(task: TaskMetrics) -> tuple[str, ...]:
    """TABLE_HEADERS, with a value column per metric of the task (main first) and the interval
    column naming its metric where there are several."""
    if task.accuracy_only:
        return TABLE_HEADERS
    return ("Method", *(f"{TITLES.get(m, m)} (mean ± std, n)" for m in task.metrics),
            f"95 % interval ({TITLES.get(task.main, task.main)})", *TABLE_HEADERS[3:])


def format_value(summary: stats.Summary | None, ran: bool = False) -> str:
    """``93.10 ± 0.25 (n=3)``; one seed has no spread: ``93.10 (n=1)``; "–" where the row's runs
    did not log the metric."""
    if summary is None:
        return "–" if ran else NOT_RUN
    if summary.n == 1:
        return f"{summary.mean:.2f} (n=1)"
    return f"{summary.mean:.2f} ± {summary.std:.2f} (n={summary.n})"


def format_interval(cells: Cells, ran: bool = False) -> str:
    if cells.summary is None:
        return "–" if ran else NOT_RUN
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
    """The display cells of one row, in :func:`table_headers` order (+ original work, + runs)."""
    ran = bool(row.runs)
    out = [row.label, format_value(cells.summary, ran),
           *(format_value(other, ran) for other in cells.others), format_interval(cells, ran),
           f"{cells.params:,}" if cells.params else ("–" if row.runs else NOT_RUN),
           f"{cells.times_smaller:.1f}×" if cells.times_smaller else ("–" if row.runs else NOT_RUN)]
    if paper:
        out.append(format_original(cells.original))
    out.append(", ".join(run.run_id[:8] for run in row.runs) or NOT_RUN)
    return out


TABLE_CSV_COLUMNS = ("section", "method", "status", "config_method", "teachers", "student",
                     "noise_p", "warmup_epochs", "noise_teachers", "meta_every", "recipe",
                     "accuracy_mean", "accuracy_std", "n", "ci_low", "ci_high", "ci_kind", "params",
                     "times_smaller", "seeds", "run_ids")


def table_csv_columns(task: TaskMetrics) -> tuple[str, ...]:
    """TABLE_CSV_COLUMNS; for a task scored by more than accuracy ``<metric>_mean`` and
    ``<metric>_std`` for each metric (main first) and the interval as ``<main>_ci_low``/``_high``."""
    if task.accuracy_only:
        return TABLE_CSV_COLUMNS
    start, end = TABLE_CSV_COLUMNS.index("accuracy_mean"), TABLE_CSV_COLUMNS.index("ci_kind")
    return (*TABLE_CSV_COLUMNS[:start], *(f"{m}_{s}" for m in task.metrics for s in ("mean", "std")),
            "n", f"{task.main}_ci_low", f"{task.main}_ci_high", *TABLE_CSV_COLUMNS[end:])


def _ci_kind(cells: Cells, main: str) -> str:
    if not cells.interval:
        return ""
    if not cells.over_test_examples:
        return "t_over_seeds"
    return "wilson_test_examples" if main == ACCURACY else "bootstrap_test_examples"


def table_csv(table: Table, cells: dict[Row, Cells], paper: bool) -> pd.DataFrame:
    """Machine-readable Table: numbers unformatted, full run ids (``;``-separated)."""
    task = table.task
    ci = "ci" if task.accuracy_only else f"{task.main}_ci"  # the SST-2 names as they always were
    records = []
    for section in table.sections:
        for row in section.rows:
            c = cells[row]
            summaries = dict(zip(task.metrics, (c.summary, *c.others)))
            record = {
                "section": section.title, "method": row.label,
                "status": "run" if row.runs else NOT_RUN, "config_method": row.key.method,
                "teachers": tracking.teachers_tag(row.key.teachers),
                "student": row.key.student, "noise_p": row.key.noise_p,
                "warmup_epochs": row.key.warmup_epochs, "noise_teachers": row.key.noise_teachers,
                "meta_every": row.key.meta_every, "recipe": row.key.recipe,
                **{f"{m}_{part}": getattr(summaries.get(m), part, None)
                   for m in task.metrics for part in ("mean", "std")},
                "n": c.summary.n if c.summary else 0,
                f"{ci}_low": c.interval[0] if c.interval else None,
                f"{ci}_high": c.interval[1] if c.interval else None,
                "ci_kind": _ci_kind(c, task.main),
                "params": c.params, "times_smaller": c.times_smaller,
                "seeds": ";".join(str(run.seed) for run in row.runs),
                "run_ids": ";".join(run.run_id for run in row.runs)}
            if paper:
                record["original_work"] = c.original.accuracy if c.original else None
            records.append(record)
    columns = [*table_csv_columns(task), *(["original_work"] if paper else [])]
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
                    "“": "``", "”": "''", "·": r"$\cdot$", "√": r"$\surd$"}


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
    width = len(table_headers(table.task)) + (2 if paper else 1)
    if not table.sections:
        return [("", [[table.empty_note] + [NOT_RUN] * (width - 1)])]
    return [(section.title, [table_cells(row, cells[row], paper) for row in section.rows])
            for section in table.sections]


def times_smaller_note(basis: TeacherBasis) -> str:
    """The rule of :func:`orchestrator.report.tables.teacher_basis`, with this sweep's teachers."""
    rule = "Times Smaller: the mean parameter count of the sweep's teacher models"
    if not basis.models:
        return f"{rule} ÷ the student's, as the original work computes it; this sweep has no teacher."
    teachers = ", ".join(model_name(model) for model in basis.models)
    missing = "" if basis.mean_params else "; a teacher's count is missing, so none here"
    return (f"{rule} ({teachers}) ÷ the student's, as the original work computes it; none for the "
            f"teachers themselves{missing}.")


def recipe_note(names: SweepNames) -> str:
    """Which training recipe(s) the runs used ("default": the search space's own ``train:``)."""
    quoted = [f"“{recipe}”" for recipe in names.recipes]
    if not quoted:  # every run skipped as malformed: nothing to name
        return "Recipe: no run was read."
    if len(quoted) == 1:
        return f"Recipe: every run used the {quoted[0]} training recipe."
    listed = ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return f"Recipes: the runs used the {listed} training recipes; each label ends with its own."


def metric_notes(task: TaskMetrics) -> list[str]:
    """What the value columns and the interval are: an SST-2 table's two notes as they always
    were; for another task each metric's definition and the main one's interval."""
    if task.accuracy_only:
        return [f"Accuracy: {task.title} test accuracy in %, mean ± sample standard deviation over "
                "seeds (n seeds).",
                "95 % interval: Student t interval for the mean over seeds; † one seed: Wilson "
                "interval over that run's test examples instead."]
    meaning = {
        ACCURACY: f"{task.title} test accuracy in %",
        "f1": f"{task.title} test F1 of the positive class (label 1, “{task.positive}”) in %, "
              "2·TP / (2·TP + FP + FN)",
        "matthews": f"{task.title} test Matthews correlation × 100 (from −100 to 100), "
                    "(TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN))"}
    defined = "; ".join(f"{TITLES.get(m, m)}: {meaning.get(m, f'{task.title} test {m}')}"
                        for m in task.metrics)
    main = TITLES.get(task.main, task.main)
    return [f"{defined}. Each is the mean ± sample standard deviation over seeds (n seeds); "
            f"{WORDS.get(task.main, task.main)}, {task.title}'s main metric, comes first.",
            f"95 % interval of {main}: Student t interval for the mean over seeds; † one seed: "
            f"percentile bootstrap interval over that run's test examples instead "
            f"({TEST_BOOTSTRAP_RESAMPLES:,} resamples, seed {TEST_BOOTSTRAP_SEED})."]


def table_notes(paper: bool, runs_column: bool, names: SweepNames, basis: TeacherBasis,
                task: TaskMetrics) -> list[str]:
    """Footnotes of Tables 1–3; the LaTeX tables have no Runs column, so no note on it."""
    notes = [
        *metric_notes(task),
        times_smaller_note(basis),
        recipe_note(names),
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


def write_table(table: Table, cells: dict[Row, Cells], paper: bool, latex_notes: Sequence[str],
                out_dir: Path, files: list[Path]) -> str:
    headers = [*table_headers(table.task), *([ORIGINAL_HEADER] if paper else [])]
    sections = display_sections(table, cells, paper)
    markdown = markdown_table([*headers, RUNS_HEADER], sections)
    latex_sections = [(title, [row[:-1] for row in rows]) for title, rows in sections]
    (out_dir / f"{table.name}.md").write_text(f"**{table.heading}**\n\n{markdown}",
                                              encoding="utf-8")
    (out_dir / f"{table.name}.tex").write_text(
        latex_table(table.title, f"tab:{table.name}", headers, latex_sections, latex_notes),
        encoding="utf-8")
    files.extend([out_dir / f"{table.name}.md", out_dir / f"{table.name}.tex",
                  write_csv(table_csv(table, cells, paper), out_dir / f"{table.name}.csv")])
    return markdown


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def runs_frame(tables: Sequence[Table], names: SweepNames, task: TaskMetrics) -> pd.DataFrame:
    """One line per (table row, run): the run ids behind every cell, and each run's test scores
    (%; a task's metrics other than accuracy after it)."""
    others = [m for m in task.metrics if m != ACCURACY]
    records = [{"table": table.name, "row": row.label,
                "configuration": full_label(row.key, names), "seed": run.seed,
                "run_id": run.run_id,
                "run_name": run.run_name, "test_accuracy": run.accuracy,
                **{f"test_{m}": run_value(run, m) for m in others},
                "student_params": run.student_params, "teacher_params": run.teacher_params}
               for table in tables for row in table.rows for run in row.runs]
    return pd.DataFrame.from_records(records, columns=[
        "table", "row", "configuration", "seed", "run_id", "run_name", "test_accuracy",
        *(f"test_{m}" for m in others), "student_params", "teacher_params"])
