"""The "size and speed" section of a report: ``size_and_speed.md``/``.csv``/``.tex`` from
:mod:`orchestrator.report.cost_table`, the accuracy–cost plot of :mod:`orchestrator.report.frontier`
(``plots/<main>_vs_cost.png``) and the README's section, which lists the Pareto front's models.
A sweep whose runs predate the cost metrics gets the section's one line saying so, and no files.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from orchestrator.report import stats
from orchestrator.report.cost_table import VARIANTS, CostRow, CostTable, Variant
from orchestrator.report.frontier import Point, fronts, plot_frontier, points_of
from orchestrator.report.metrics import TITLES, WORDS, TaskMetrics
from orchestrator.report.render import (
    RUNS_HEADER,
    format_p,
    format_value,
    latex_table,
    markdown_table,
    write_csv,
)
from orchestrator.report.significance import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, holm_note
from orchestrator.tracking import names as tracking
from trainers.models.cost_names import COST, LATENCY_P50, SIZE, TIMINGS
from trainers.record.artifacts import INT8_PREDICTIONS_ARTIFACT

NAME = "size_and_speed"
NOT_MEASURED = "not measured"
FIGURES = {SIZE: ("Size (MB)", 1), TIMINGS[0]: ("Latency p50 (ms)", 2), TIMINGS[1]: ("Latency p95 (ms)", 2),
           TIMINGS[2]: ("Throughput b32 (sentences/s)", 0)}  # header, decimals
LATEX_FIGURES = (SIZE, TIMINGS[0], TIMINGS[2])


def plot_file(task: TaskMetrics) -> str:
    return f"plots/{task.main}_vs_cost.png"


def headers(task: TaskMetrics) -> list[str]:
    return ["Method", "Variant", f"{TITLES.get(task.main, task.main)} (mean ± std, n)",
            "Δ int8 − fp32 (points) [95 % CI]", "p (bootstrap)", "Holm", "Only int8 right / only fp32 right",
            "p (McNemar)", *(FIGURES[f][0] for f in COST), "Threads", RUNS_HEADER]


def _figure(summary: stats.Summary | None, decimals: int, runs: int) -> str:
    """``12.34 ± 0.56``; one run: ``12.34``; `` (n=k)`` where fewer than the row's ``runs`` logged it."""
    if summary is None:
        return NOT_MEASURED
    spread = "" if math.isnan(summary.std) else f" ± {summary.std:.{decimals}f}"
    return f"{summary.mean:.{decimals}f}{spread}" + (f" (n={summary.n})" if summary.n != runs else "")


def _test_cells(row: CostRow) -> list[str]:
    test = row.test
    if test.diff is None:
        return [test.note, "–", "–", "–", "–"]
    if test.bootstrap is None or test.mcnemar is None:
        return [f"{test.diff:+.2f} ({test.note})", "–", "–", "–", "–"]
    boot = test.bootstrap
    return [f"{100 * boot.diff:+.2f} [{100 * boot.ci_low:+.2f}, {100 * boot.ci_high:+.2f}]",
            format_p(boot.p_value), "–" if test.holm is None else "yes" if test.holm else "no",
            f"{test.mcnemar.a_only} / {test.mcnemar.b_only}", format_p(test.mcnemar.p_value)]


def _variant_cells(row: CostRow, variant: Variant) -> list[str]:
    tests = _test_cells(row) if variant.name == "int8" else ["", "", "", "", ""]
    figures = [_figure(variant.cost[f], FIGURES[f][1], len(row.row.runs)) for f in COST]
    return [row.row.label, variant.name, format_value(variant.score, ran=True), *tests, *figures,
            ", ".join(map(str, row.threads)) or "not recorded",
            ", ".join(run.run_id[:8] for run in row.row.runs)]


def table_rows(table: CostTable) -> list[list[str]]:
    return [_variant_cells(row, row.variant(name)) for row in table.rows for name in VARIANTS]


def cost_csv(table: CostTable) -> pd.DataFrame:
    """One line per configuration and variant, numbers unformatted, full run ids."""
    records = []
    for row in table.rows:
        for name in VARIANTS:
            variant, test = row.variant(name), row.test
            boot, mc = (test.bootstrap, test.mcnemar) if name == "int8" else (None, None)
            records.append({
                "method": row.row.label, "variant": name, "config_method": row.row.key.method,
                "teachers": tracking.teachers_tag(row.row.key.teachers), "student": row.row.key.student,
                "metric": table.metric, "mean": getattr(variant.score, "mean", None),
                "std": getattr(variant.score, "std", None), "n": getattr(variant.score, "n", 0),
                "diff_points": (100 * boot.diff if boot else test.diff) if name == "int8" else None,
                "ci_low_points": 100 * boot.ci_low if boot else None,
                "ci_high_points": 100 * boot.ci_high if boot else None,
                "p_bootstrap": boot.p_value if boot else None, "holm": test.holm if boot else None,
                "n_examples": boot.n if boot else None,
                "only_int8_correct": mc.a_only if mc else None,
                "only_fp32_correct": mc.b_only if mc else None,
                "p_mcnemar": mc.p_value if mc else None, "note": test.note if name == "int8" else "",
                **{f"{f}_{part}": getattr(variant.cost[f], part, None)
                   for f in COST for part in ("mean", "std")},
                "n_measured": variant.measured, "threads": ";".join(map(str, row.threads)),
                "run_ids": ";".join(run.run_id for run in row.row.runs)})
    return pd.DataFrame.from_records(records).astype(
        {"n_examples": "Int64", "only_int8_correct": "Int64", "only_fp32_correct": "Int64"})


def notes(table: CostTable, task: TaskMetrics) -> list[str]:
    word = WORDS.get(task.main, task.main)
    return [
        f"A row per configuration and variant: its model (fp32) and that model's dynamic int8 variant "
        f"(trainers/models/quantize.py), {word} on the same test examples; mean ± sample std over seeds (n).",
        "Size: MB (10⁶ bytes) of the weights file (safetensors; the int8 file for int8). Latency: one "
        "sentence at a time (batch 1), median and 95th percentile over the first 128 test sentences, eager "
        "PyTorch on the CPU; throughput: sentences/s at batch 32 (best round). Every model measured by one "
        "harness (trainers/models/cost.py) at the end of its trial, fp32 and int8 alternately, on the "
        "Threads column's CPU threads; each figure is the mean ± std over the row's runs. Timings are of the "
        "machine and its load when each trial ran (the provenance above), so they compare within a sweep.",
        f"Δ int8 − fp32: run r's int8 predictions paired with run r's fp32 predictions, pooled over the "
        f"row's seeds; 95 % CI and two-sided p from a paired bootstrap ({BOOTSTRAP_RESAMPLES:,} resamples, "
        f"seed {BOOTSTRAP_SEED}); McNemar: exact binomial test on the examples only one variant gets right. "
        f"Where a run has no per-example int8 predictions ({INT8_PREDICTIONS_ARTIFACT}: runs logged before "
        "they were) the difference of the logged scores stands alone, untested.",
        holm_note().replace("each column of bootstrap p-values a family of its own",
                            "the int8 tests of this table one family"),
    ]


def front_lines(points: list[Point], task: TaskMetrics) -> list[str]:
    """Each panel's front, cheapest first: ``3 KD MiniLM→MiniLM@2, int8: 81.20 %, 5.21 ms``."""
    lines = []
    for figure, members in fronts(points).items():
        unit = "ms" if figure == LATENCY_P50 else "MB"
        listed = "; ".join(f"{p.number} {p.name} ({p.score:.2f} {task.unit}, {p.cost[figure]:.2f} {unit})"
                           for p in members)
        lines.append(f"- {WORDS.get(task.main, task.main).capitalize()} against "
                     f"{'latency p50' if figure == LATENCY_P50 else 'size'}: {listed}.")
    return lines


def write_cost_section(table: CostTable, out_dir: Path, files: list[Path], task: TaskMetrics) -> str:
    """The files and the README's section, whole."""
    heading = "## Size and speed: each model and its int8 variant\n\n"
    if table.missing:
        return f"{heading}No table and no accuracy–cost plot: {table.missing}.\n"
    markdown = markdown_table(headers(task), [("", table_rows(table))])
    (out_dir / f"{NAME}.md").write_text(f"**Size and speed: each model and its int8 variant**\n\n{markdown}",
                                        encoding="utf-8")
    all_headers = headers(task)
    pick = [0, 1, 2, 3, *(all_headers.index(FIGURES[f][0]) for f in LATEX_FIGURES)]
    (out_dir / f"{NAME}.tex").write_text(
        latex_table("Size and speed of each model and its int8 variant", f"tab:{NAME}",
                    [all_headers[i] for i in pick], [("", [[r[i] for i in pick] for r in table_rows(table)])],
                    notes(table, task)),
        encoding="utf-8")
    files.extend([out_dir / f"{NAME}.md", out_dir / f"{NAME}.tex",
                  write_csv(cost_csv(table), out_dir / f"{NAME}.csv")])
    points = points_of(table)
    plot = out_dir / plot_file(task)
    plot_frontier(points, plot, task)
    files.append(plot)
    title = f"{TITLES.get(task.main, task.main)} against latency and size"
    return (heading + markdown + "\n" + "\n".join(f"- {note}" for note in notes(table, task))
            + f"\n\nFiles: [{NAME}.csv]({NAME}.csv) · [{NAME}.tex]({NAME}.tex)\n\n"
            f"[{title}]({plot_file(task)}): each model a point, against its median CPU latency at batch 1 "
            "and against its size on disk (log scales); fp32 ● and int8 ▲, a colour per configuration (the "
            "key beside the panels), error bars = std over seeds; ringed, numbered and joined: the Pareto "
            "front, the models no other model beats in both test score and cost.\n\n"
            f"![{title}]({plot_file(task)})\n\n"
            "The Pareto front (higher test score, lower cost), cheapest first:\n\n"
            + "\n".join(front_lines(points, task)) + "\n")
