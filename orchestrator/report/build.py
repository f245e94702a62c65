"""One sweep's report, end to end: read the runs, lay out Tables 1–3, compute their numbers and
the paired tests, and write every file into the output folder (``results/store/reports/<sweep>/``
by default, ``results/<sweep>/`` for a report the project commits):

- ``table1``/``table2``/``table3``/``significance`` as ``.md``, ``.csv`` and ``.tex`` (booktabs),
  headed by the task's metrics, the main one first (MRPC: F1, then accuracy), the interval and the
  significance tests on the main one (:mod:`orchestrator.report.metrics`);
- ``recipes.md``/``.csv``, where the sweep used several recipes: each configuration against itself
  under the reference recipe;
- ``runs.csv``: every run id behind every row, so each cell can be traced back to MLflow;
- ``environment.csv``: each run's CPU, kernel path, versions and teachers' weights digests;
- ``plots/<main>_vs_params.png``, ``plots/val_<main>_per_epoch.png`` (SST-2:
  ``accuracy_vs_params.png``, ``val_accuracy_per_epoch.png``; MRPC: ``f1_vs_params.png``, …);
- ``size_and_speed.md``/``.csv``/``.tex`` and ``plots/<main>_vs_cost.png``: each model and its
  int8 variant, their test score, size, latency and throughput, and the Pareto front
  (:mod:`orchestrator.report.cost_section`);
- in a random search, ``search.md``/``.csv``, ``plots/search_<value>.png`` and the space files that
  re-run the best over more seeds (``best_space.yaml``); the tables show each configuration's best
  sample (:mod:`orchestrator.report.search`);
- ``README.md`` embedding the tables and linking the plots.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlflow import MlflowClient

from orchestrator.check.artifacts import rebuild_hint
from orchestrator.report.best_space import shown, sweep_space, write_best_spaces
from orchestrator.report.cost_section import write_cost_section
from orchestrator.report.cost_table import cost_table
from orchestrator.report.environment import write_environment
from orchestrator.report.labels import SweepNames, full_label
from orchestrator.report.metrics import sweep_task
from orchestrator.report.plots import plot_files, plot_val_per_epoch, plot_vs_params
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import GroupKey, SweepData, TrialRun, load_sweep, val_histories
from orchestrator.report.readme import readme_text
from orchestrator.report.recipes import recipe_comparisons, write_recipe_comparisons
from orchestrator.report.render import runs_frame, table_notes, write_csv, write_table
from orchestrator.report.search import objective_of, rank, search_note
from orchestrator.report.search_section import write_search
from orchestrator.report.significance import comparisons
from orchestrator.report.significance_table import write_significance
from orchestrator.report.tables import (
    Cells,
    Row,
    Table,
    expected_keys,
    row_cells,
    table1,
    table2,
    table3,
    table4,
    table5,
    teacher_basis,
)
from orchestrator.tracking.store import no_progress_bars
from trainers.record.artifacts import INT8_PREDICTIONS_ARTIFACT


@dataclass(frozen=True)
class ReportResult:
    sweep: str
    out_dir: Path
    files: tuple[Path, ...]
    table1_markdown: str
    warnings: tuple[str, ...]


def build_report(client: MlflowClient, sweep: str, out_dir: Path) -> ReportResult:
    """Read the sweep from MLflow and write every table, plot and the README into ``out_dir``."""
    data = load_sweep(client, sweep)
    space, no_space = sweep_space(data) if data.is_search else (None, "")
    task = sweep_task(data.runs)  # its metrics head the tables; the main one is tested, plotted, ranked
    ranking = rank(data, objective_of(data.tags, space.spec.search if space else None,
                                      shown(space.path) if space else "", task))
    groups = ranking.table_groups  # a search's best sample of each configuration; else all its runs
    expected = expected_keys(data)
    names = SweepNames.of(set(groups) | expected)
    tables = [table1(groups, expected, names, task), table2(groups, expected, names, task),
              table3(groups, expected, names, task)]
    tables += [t for t in [table4(groups, expected, names, task), table5(groups, expected, names, task)]
               if t is not None]
    basis = teacher_basis(data.runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="report-") as scratch, no_progress_bars():
        predictions = Predictions(client, Path(scratch), rebuild_hint(client, sweep))
        cells = {row: row_cells(row, names, basis, predictions, data.is_paper, task)
                 for table in tables for row in table.rows}
        significance = comparisons(tables, groups, names, predictions, task.main)
        by_recipe = recipe_comparisons(groups, names, predictions, task.main)
        unique_rows = _unique_rows_with_runs(tables, cells, names)
        int8 = Predictions(client, Path(scratch), rebuild_hint(client, sweep), INT8_PREDICTIONS_ARTIFACT,
                           "int8 test predictions")
        costs = cost_table(client, [row for row, _ in unique_rows], predictions, int8, task)
    search_notes = [search_note(ranking)] if data.is_search else []
    latex_notes = table_notes(data.is_paper, False, names, basis, task) + search_notes  # no Runs column
    markdown = {t.name: write_table(t, cells, data.is_paper, latex_notes, out_dir, files) for t in tables}
    significance_md = write_significance(significance, out_dir, files, task.main)
    recipes_md = write_recipe_comparisons(by_recipe, out_dir, files, task.main)
    cost_md = write_cost_section(costs, out_dir, files, task)
    files.append(write_csv(runs_frame(tables, names, task), out_dir / "runs.csv"))
    files.append(write_environment(data.runs, out_dir / "environment.csv"))
    plots = {name: out_dir / path for name, path in plot_files(task).items()}
    plot_vs_params(unique_rows, plots["vs_params"], task)
    plot_val_per_epoch(val_histories(client, {row: row.runs for row, _ in unique_rows},
                                     f"val_{task.main}"), plots["per_epoch"], task)
    files.extend(plots.values())
    best = write_best_spaces(space, ranking, names, data.name, out_dir) if space else None
    search_md = write_search(ranking, names, best, no_space, out_dir, files)
    warnings = _warnings(data, groups, tables, names)
    warnings += [f"no best_space.yaml: {no_space}"] if no_space else []
    warnings += list(best.missing) if best else []
    readme = out_dir / "README.md"
    readme.write_text(readme_text(data, client.tracking_uri, tables, markdown, significance_md,
                                  table_notes(data.is_paper, True, names, basis, task) + search_notes,
                                  warnings, recipes_md, search_md, task, _findings(out_dir), out_dir,
                                  cost_md),
                      encoding="utf-8")
    files.append(readme)
    return ReportResult(sweep, out_dir, tuple(files), markdown["table1"], tuple(warnings))


def _findings(out_dir: Path) -> str:
    """The sweep's hand-written findings (``findings.md`` beside the report), or nothing."""
    path = out_dir / "findings.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _unique_rows_with_runs(tables: Sequence[Table], cells: dict[Row, Cells],
                           names: SweepNames) -> list[tuple[Row, Cells]]:
    """Each configuration once (a base row of Table 2 may also be a Table 1 row), under its full
    label: in a plot "+ noise p=0.1" has no row above it to read the rest from."""
    rows: dict[GroupKey, tuple[Row, Cells]] = {}
    for row in (row for table in tables for row in table.rows if row.runs):
        rows.setdefault(row.key, (replace(row, label=full_label(row.key, names)), cells[row]))
    return list(rows.values())


def _warnings(data: SweepData, groups: dict[GroupKey, tuple[TrialRun, ...]],
              tables: Sequence[Table], names: SweepNames) -> list[str]:
    shown = {row.key for table in tables for row in table.rows}
    warnings = list(data.skipped)
    warnings += [f"{len(groups[k])} run(s) of {full_label(k, names)} (method {k.method!r}) "
                 f"are in no table" for k in sorted(set(groups) - shown)]
    if data.unfinished:
        warnings.append(f"{data.unfinished} trial run(s) not FINISHED (running, failed or "
                        f"killed) are left out")
    return warnings
