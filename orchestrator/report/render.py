"""Tables 1–3 and the significance table as files: Markdown (GitHub), CSV (numbers unformatted,
full run ids) and LaTeX (booktabs); and ``runs.csv``, every run id behind every row.

The display cells of a row are formatted here, once, and the Markdown and LaTeX tables are made
from the same cells (LaTeX without the Runs column, which a paper page has no room for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from orchestrator import stats, tracking
from orchestrator.report.labels import SweepNames, full_label, model_name
from orchestrator.report.significance import SIGNIFICANCE_NOTES, RowTests
from orchestrator.report.tables import Cells, OriginalNumber, Row, Table, TeacherBasis

NOT_RUN = "not run"
TABLE_HEADERS = ("Method", "Accuracy (mean ± std, n)", "95 % interval", "No. of Parameters",
                 "Times Smaller")
ORIGINAL_HEADER = "Original work"
RUNS_HEADER = "Runs"


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
                     "noise_p", "warmup_epochs", "noise_teachers", "meta_every", "recipe",
                     "accuracy_mean", "accuracy_std", "n", "ci_low", "ci_high", "ci_kind", "params",
                     "times_smaller", "seeds", "run_ids")


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
                "warmup_epochs": row.key.warmup_epochs, "noise_teachers": row.key.noise_teachers,
                "meta_every": row.key.meta_every, "recipe": row.key.recipe,
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


def table_notes(paper: bool, runs_column: bool, names: SweepNames, basis: TeacherBasis,
                task: str = "SST-2") -> list[str]:
    """Footnotes of Tables 1–3; the LaTeX tables have no Runs column, so no note on it."""
    notes = [
        f"Accuracy: {task} test accuracy in %, mean ± sample standard deviation over seeds "
        "(n seeds).",
        "95 % interval: Student t interval for the mean over seeds; † one seed: Wilson interval "
        "over that run's test examples instead.",
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
    # A note beside a difference names the other recipe whose fine-tuned student it is against.
    vs_ft = ([_difference(ft.bootstrap) + (f" ({ft.note})" if ft.note else ""),
              format_p(ft.bootstrap.p_value)] if ft.bootstrap else [ft.note, "–"])
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


def write_table(table: Table, cells: dict[Row, Cells], paper: bool, latex_notes: Sequence[str],
                out_dir: Path, files: list[Path]) -> str:
    headers = [*TABLE_HEADERS, *([ORIGINAL_HEADER] if paper else [])]
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


def write_significance(items: Sequence[RowTests], out_dir: Path, files: list[Path]) -> str:
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
                  write_csv(significance_csv(items), out_dir / "significance.csv")])
    return markdown


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def runs_frame(tables: Sequence[Table], names: SweepNames) -> pd.DataFrame:
    """One line per (table row, run): the run ids behind every cell."""
    records = [{"table": table.name, "row": row.label,
                "configuration": full_label(row.key, names), "seed": run.seed,
                "run_id": run.run_id,
                "run_name": run.run_name, "test_accuracy": run.accuracy,
                "student_params": run.student_params, "teacher_params": run.teacher_params}
               for table in tables for row in table.rows for run in row.runs]
    return pd.DataFrame.from_records(records, columns=[
        "table", "row", "configuration", "seed", "run_id", "run_name", "test_accuracy",
        "student_params", "teacher_params"])
