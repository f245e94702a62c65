"""The significance table as files: ``significance.md`` (GitHub Markdown), ``.tex`` (booktabs, five
columns) and ``.csv`` (numbers unformatted, full run ids), from the paired tests of
:mod:`orchestrator.report.significance`. Δ is of the task's main metric; the headers name it
where it is not accuracy (an SST-2 table's are as they always were).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from orchestrator.report import stats
from orchestrator.report.metrics import ACCURACY, TITLES, WORDS
from orchestrator.report.reader import GroupKey
from orchestrator.report.render import RUNS_HEADER, format_p, latex_table, markdown_table, write_csv
from orchestrator.report.significance import RowTests, holm, significance_notes
from orchestrator.report.tables import Row
from trainers.methods import registry as methods

SIGNIFICANCE_HEADERS = ("Method", "Δ vs. fine-tuned student (points) [95 % CI]", "p vs. fine-tuned",
                        "Holm", "vs. KD baseline", "Seeds", "Examples",
                        "Δ accuracy (points) [95 % CI]", "p (bootstrap)", "Holm (bootstrap)",
                        "Only this right / only KD right", "p (McNemar)", RUNS_HEADER)


SIGNIFICANCE_LATEX_HEADERS = ("Method", "Δ vs. fine-tuned student (points) [95 % CI]", "Seeds",
                              "Δ accuracy (points) [95 % CI]", "p (bootstrap)", "p (McNemar)")


def significance_headers(metric: str, headers: Sequence[str] = SIGNIFICANCE_HEADERS) -> list[str]:
    """The headers naming the metric Δ is of (as they always were for accuracy), and McNemar's
    what it tests, correctness, where that is not the metric."""
    if metric == ACCURACY:
        return list(headers)
    title = TITLES.get(metric, metric)
    renamed = {"Δ vs. fine-tuned student (points) [95 % CI]":
               f"Δ {title} vs. fine-tuned student (points) [95 % CI]",
               "Δ accuracy (points) [95 % CI]": f"Δ {title} (points) [95 % CI]",
               "p (McNemar)": "p (McNemar, correctness)"}
    return [renamed.get(h, h) for h in headers]


def _difference(boot: stats.BootstrapResult) -> str:
    return f"{100 * boot.diff:+.2f} [{100 * boot.ci_low:+.2f}, {100 * boot.ci_high:+.2f}]"


def _holm_columns(items: Sequence[RowTests]) -> tuple[list[bool | None], list[bool | None]]:
    """Holm's decisions over the table, each column of bootstrap p-values a family: against the
    fine-tuned student, and against the second baseline."""
    return (holm([t.finetuned.bootstrap.p_value if t.finetuned.bootstrap else None for t in items]),
            holm([t.kd.bootstrap.p_value if t.kd and t.kd.bootstrap else None for t in items]))


def _survives(decision: bool | None) -> str:
    return "–" if decision is None else "yes" if decision else "no"


def _alone(key: GroupKey) -> str:
    """Why a row has no second baseline: it is one (KD), or its method names none (mutual)."""
    known = methods.known(key.method)
    return "is the KD baseline" if known and known.compared_with == key.method else "no second baseline"


def significance_cells(tests: RowTests, holm_ft: bool | None = None,
                       holm_c: bool | None = None) -> list[str]:
    """A row's cells; ``holm_*``: whether each test survives Holm's correction over the table."""
    ft, c = tests.finetuned, tests.kd
    # A note beside a difference names the other recipe whose fine-tuned student it is against.
    vs_ft = ([_difference(ft.bootstrap) + (f" ({ft.note})" if ft.note else ""),
              format_p(ft.bootstrap.p_value), _survives(holm_ft)] if ft.bootstrap else [ft.note, "–", "–"])
    runs = ", ".join(r.run_id[:8] for r in (*tests.row.runs, *(c.baseline.runs if c else ())))
    if c is None:
        alone = f"– ({_alone(tests.row.key)})"
        return [tests.row.label, *vs_ft, alone, "–", "–", "–", "–", "–", "–", "–", runs]
    if c.bootstrap is None or c.mcnemar is None:
        return [c.row.label, *vs_ft, c.baseline.label, "–", "–", c.note, "–", "–", "–", "–", runs]
    boot = c.bootstrap
    return [c.row.label, *vs_ft, c.baseline.label, ", ".join(map(str, c.seeds)), f"{boot.n:,}",
            _difference(boot), format_p(boot.p_value), _survives(holm_c),
            f"{c.mcnemar.a_only} / {c.mcnemar.b_only}",
            format_p(c.mcnemar.p_value), runs]


def significance_csv(items: Sequence[RowTests], metric: str = ACCURACY) -> pd.DataFrame:
    """Numbers unformatted; for a main metric other than accuracy a first column ``metric``
    names what the ``diff``/``ci`` columns are of (McNemar's counts are correctness)."""
    records = []
    holm_ft, holm_c = _holm_columns(items)
    for tests, survives_ft, survives in zip(items, holm_ft, holm_c):
        ft = tests.finetuned
        c = tests.kd or replace(ft, baseline=Row("", ft.row.key, ()), seeds=(), bootstrap=None,
                                mcnemar=None, note=_alone(ft.row.key))
        boot, mc, ft_boot = c.bootstrap, c.mcnemar, ft.bootstrap
        records.append({
            "method": c.row.label, "finetuned_baseline": ft.baseline.label,
            "finetuned_diff_points": 100 * ft_boot.diff if ft_boot else None,
            "finetuned_ci_low_points": 100 * ft_boot.ci_low if ft_boot else None,
            "finetuned_ci_high_points": 100 * ft_boot.ci_high if ft_boot else None,
            "finetuned_p_bootstrap": ft_boot.p_value if ft_boot else None,
            "finetuned_p_mcnemar": ft.mcnemar.p_value if ft.mcnemar else None,
            "finetuned_holm": survives_ft, "finetuned_note": ft.note, "baseline": c.baseline.label,
            "seeds": ";".join(map(str, c.seeds)), "n_examples": boot.n if boot else None,
            "diff_points": 100 * boot.diff if boot else None,
            "ci_low_points": 100 * boot.ci_low if boot else None,
            "ci_high_points": 100 * boot.ci_high if boot else None,
            "p_bootstrap": boot.p_value if boot else None, "holm": survives,
            "only_method_correct": mc.a_only if mc else None,
            "only_baseline_correct": mc.b_only if mc else None,
            "p_mcnemar": mc.p_value if mc else None, "note": c.note,
            "run_ids": ";".join(r.run_id for r in c.row.runs),
            "baseline_run_ids": ";".join(r.run_id for r in c.baseline.runs)})
    frame = pd.DataFrame.from_records(records, columns=[
        "method", "finetuned_baseline", "finetuned_diff_points", "finetuned_ci_low_points",
        "finetuned_ci_high_points", "finetuned_p_bootstrap", "finetuned_p_mcnemar", "finetuned_holm",
        "finetuned_note", "baseline", "seeds", "n_examples", "diff_points", "ci_low_points",
        "ci_high_points", "p_bootstrap", "holm", "only_method_correct", "only_baseline_correct",
        "p_mcnemar", "note", "run_ids", "baseline_run_ids"]).astype(
        {"n_examples": "Int64", "only_method_correct": "Int64", "only_baseline_correct": "Int64"})
    if metric != ACCURACY:
        frame.insert(0, "metric", metric)
    return frame


def write_significance(items: Sequence[RowTests], out_dir: Path, files: list[Path],
                       metric: str = ACCURACY) -> str:
    """``significance.md``/``.tex``/``.csv``; Δ is of ``metric``, the task's main one."""
    holm_ft, holm_c = _holm_columns(items)
    rows = [significance_cells(c, f, k) for c, f, k in zip(items, holm_ft, holm_c)]
    if not rows:
        rows = [["no distilled configuration with runs"] + ["–"] * (len(SIGNIFICANCE_HEADERS) - 1)]
    markdown = markdown_table(significance_headers(metric), [("", rows)])
    on = "" if metric == ACCURACY else f" of {WORDS.get(metric, metric)}"
    (out_dir / "significance.md").write_text(
        f"**Significance{on}: each distilled configuration against its fine-tuned student and against "
        f"KD**\n\n{markdown}",
        encoding="utf-8")
    # A paper page has room for five columns; the baseline is in the caption, the counts in the CSV.
    pick = [SIGNIFICANCE_HEADERS.index(h) for h in SIGNIFICANCE_LATEX_HEADERS]
    (out_dir / "significance.tex").write_text(
        latex_table(f"Paired tests{on} against the fine-tuned student and against KD with the same "
                    "teacher(s) and student",
                    "tab:significance", significance_headers(metric, SIGNIFICANCE_LATEX_HEADERS),
                    [("", [[r[i] for i in pick] for r in rows])], significance_notes(metric)),
        encoding="utf-8")
    files.extend([out_dir / "significance.md", out_dir / "significance.tex",
                  write_csv(significance_csv(items, metric), out_dir / "significance.csv")])
    return markdown
