"""``results/<sweep>/README.md``: where the numbers come from (the command that regenerates
them, the MLflow store and experiment, the sweep's command, machine and time), the tables, the
plots, the footnotes and the warnings. The README is meant to be committed: the tracking URI in
it carries no credentials. What a person found in the numbers lives beside it in ``findings.md``
(hand-written, committed), which the README embeds under "Findings", so that regenerating the
report keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from orchestrator import paths
from orchestrator.report.environment import environment_markdown
from orchestrator.report.metrics import ACCURACY, SST2, WORDS, TaskMetrics
from orchestrator.report.plots import plot_files, plot_titles
from orchestrator.report.reader import SweepData
from orchestrator.report.significance import significance_notes
from orchestrator.report.tables import Table
from orchestrator.tracking.store import redact
from trainers.models.refs import PRESETS


def _time_taken(span_ms: tuple[int, int | None] | None) -> str:
    """The sweep run's wall time (a resumed sweep's run spans its interruptions too)."""
    if not span_ms or not span_ms[1]:
        return ""
    start, end = (datetime.fromtimestamp(t / 1000, timezone.utc) for t in span_ms)
    return (f"- Time: {(end - start).total_seconds() / 60:.0f} min, from {start:%Y-%m-%d %H:%M} to "
            f"{end:%H:%M} UTC (the sweep run: Ray's start to the last trial; a resumed sweep spans its "
            "interruptions)")


def _store_shown(tracking_uri: str) -> str:
    """The store without credentials, and a SQLite file by :func:`paths.shown` (relative to the
    checkout, ``sqlite:///results/mlflow.db``, which names it from the project's folder)."""
    if tracking_uri.startswith("sqlite:///"):
        return "sqlite:///" + paths.shown(tracking_uri.removeprefix("sqlite:///"))
    return redact(tracking_uri, keep_user=False)


def readme_text(data: SweepData, tracking_uri: str, tables: Sequence[Table],
                markdown: dict[str, str], significance_md: str, notes: Sequence[str],
                warnings: Sequence[str], recipes_md: str = "", search_md: str = "",
                task: TaskMetrics = SST2, findings: str = "", out_dir: Path | None = None,
                cost_md: str = "") -> str:
    """``results/<sweep>/README.md``: provenance, the tables, the plots, the footnotes (``notes``:
    the tables', :func:`orchestrator.report.render.table_notes`); ``search_md``: the search
    section, whole (:mod:`orchestrator.report.search_section`); ``cost_md``: the size-and-speed
    section, whole (:mod:`orchestrator.report.cost_section`); significance and plots are on the
    ``task``'s main metric. ``out_dir``: where the README goes, named in the command that
    regenerates it unless it is the sweep's default."""
    seeds = sorted({run.seed for run in data.runs})
    # The size (tiny or real) builds the named presets only: a sweep of pretrained models has none.
    sizes = sorted({run.size for run in data.runs if run.size and any(
        name.partition("@")[0] in PRESETS for name in (run.key.student, *run.key.teachers))})
    uri = _store_shown(tracking_uri)
    uri_option = "" if tracking_uri == paths.DEFAULT_TRACKING_URI else f" --tracking-uri {uri}"
    dir_option = ("" if out_dir is None or out_dir.resolve() == paths.report_dir(data.name).resolve()
                  else f" --report-dir {paths.shown(out_dir)}")
    provenance = [
        f"- Regenerate: `python -m orchestrator.report --sweep {data.name}{uri_option}{dir_option}`",
        f"- MLflow: `{uri}`, experiment `{data.name}` (id {data.experiment.experiment_id})"
        + (f", sweep run `{data.parent_run_id}`" if data.parent_run_id else ""),
        f"- Sweep command: `{data.tags['command']}`" if "command" in data.tags else
        "- Sweep command: not recorded (no `command` tag on the sweep run)",
        f"- Machine: {data.tags['machine']}" if "machine" in data.tags else
        "- Machine: not recorded (no `machine` tag on the sweep run)",
        f"- Search space: `{data.tags['space']}`" if "space" in data.tags else "",
        f"- Runs: {len(data.runs)} finished trial runs, seeds {', '.join(map(str, seeds))}"
        + (f"; model size: {', '.join(sizes)}" if sizes else "")
        + (f"; {len(data.stopped)} stopped early" if data.stopped else ""),
        _time_taken(data.span_ms),
    ]
    parts = [f"# Sweep `{data.name}`: results\n",
             "Tables and plots regenerated from the MLflow runs of this sweep (never from Ray's "
             "folders). Every number can be traced to its MLflow runs: the Runs column, the "
             "`run_ids` column of each CSV, and [runs.csv](runs.csv).\n",
             "\n".join(line for line in provenance if line) + "\n"]
    if findings:
        parts.append("## Findings\n\n" + findings.strip() + "\n\n(From [findings.md](findings.md), "
                     "written by hand from the tables below.)\n")
    for table in tables:
        parts.append(f"## {table.heading}\n\n{markdown[table.name]}\n"
                     f"Files: [{table.name}.md]({table.name}.md) · [{table.name}.csv]"
                     f"({table.name}.csv) · [{table.name}.tex]({table.name}.tex)\n")
    of = "" if task.main == ACCURACY else f" of {WORDS.get(task.main, task.main)}"
    parts.append(f"## Significance{of} against the fine-tuned student and KD\n\n" + significance_md + "\n"
                 + "\n".join(f"- {note}" for note in significance_notes(task.main))
                 + "\n\nFiles: [significance.csv](significance.csv) · "
                   "[significance.tex](significance.tex)\n")
    if recipes_md:
        parts.append("## Recipes against each other\n\nEach configuration under one recipe against "
                     "the same configuration under the other, paired as above.\n\n" + recipes_md
                     + "\nFiles: [recipes.md](recipes.md) · [recipes.csv](recipes.csv)\n")
    if cost_md:
        parts.append(cost_md)
    if search_md:
        parts.append(search_md)
    files, titles = plot_files(task), plot_titles(task)
    parts.append("## Plots\n\n"
                 f"[{titles['vs_params']}]({files['vs_params']}): a marker per method, "
                 f"error bars = std over seeds.\n\n![{titles['vs_params']}]"
                 f"({files['vs_params']})\n\n"
                 f"[{titles['per_epoch']}]({files['per_epoch']}): mean over "
                 f"seeds, band = ± std.\n\n![{titles['per_epoch']}]"
                 f"({files['per_epoch']})\n")
    parts.append(environment_markdown(data.runs))
    parts.append("## Notes\n\n" + "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1)) + "\n")
    if warnings:
        parts.append("## Warnings\n\n" + "\n".join(f"- {w}" for w in warnings) + "\n")
    return "\n".join(parts)
