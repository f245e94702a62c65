"""The report's plots, drawn with matplotlib's object API (no pyplot, no global state, no
display needed): the task's main metric against parameters and its validation value per epoch
(accuracy for SST-2; F1 for MRPC; :mod:`orchestrator.report.metrics`), and in a searched sweep
its validation value against each searched value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from orchestrator.report.labels import method_name
from orchestrator.report.metrics import TITLES, WORDS, TaskMetrics
from orchestrator.report.reader import GroupKey
from orchestrator.report.search import Ranking, at_last_epoch
from orchestrator.report.tables import Cells, Row
from trainers.methods import registry as methods


def plot_files(task: TaskMetrics) -> dict[str, str]:
    """The two plots' paths under the report folder, named by the main metric: SST-2's
    ``plots/accuracy_vs_params.png``, MRPC's ``plots/f1_vs_params.png``."""
    return {"vs_params": f"plots/{task.main}_vs_params.png",
            "per_epoch": f"plots/val_{task.main}_per_epoch.png"}


def plot_titles(task: TaskMetrics) -> dict[str, str]:
    """The two plots' titles: "Accuracy vs. parameters", "Validation F1 per epoch"."""
    return {"vs_params": f"{TITLES.get(task.main, task.main)} vs. parameters",
            "per_epoch": f"Validation {WORDS.get(task.main, task.main)} per epoch"}


def plot_vs_params(rows: Sequence[tuple[Row, Cells]], path: Path, task: TaskMetrics) -> None:
    """Mean test value of the task's main metric against the student's parameters (log x), error
    bars = std over seeds.

    Many rows share a student, so many points share an x: each point gets a number, points at one
    x are spread a little sideways, and the numbers are keyed to the rows' names beside the axes.
    """
    points = [(row, cells) for row, cells in rows if cells.summary is not None and cells.params]
    figure = Figure(figsize=(11, max(4.5, 1.2 + 0.22 * len(points))), layout="constrained")
    axes, key = figure.subplots(1, 2, width_ratios=[3, 2])
    by_x: dict[int, int] = {}
    for _, cells in points:
        by_x[cells.params] = by_x.get(cells.params, 0) + 1
    seen: dict[int, int] = {}
    labelled: set[str] = set()
    lines = []
    for number, (row, cells) in enumerate(points, start=1):
        name = method_name(row.key)
        std = 0.0 if math.isnan(cells.summary.std) else cells.summary.std
        crowd, place = by_x[cells.params], seen.get(cells.params, 0)
        seen[cells.params] = place + 1
        x = cells.params * 10 ** (0.02 * (place - (crowd - 1) / 2))  # 4.7 % apart
        marker, colour = _style(row.key)
        axes.errorbar(x, cells.summary.mean, yerr=std, capsize=3, linestyle="none",
                      marker=marker, color=colour, label=None if name in labelled else name)
        labelled.add(name)
        axes.annotate(str(number), (x, cells.summary.mean), fontsize=7, textcoords="offset points",
                      xytext=(3, 4 if place % 2 == 0 else -11))  # neighbours' numbers above, below
        lines.append(f"{number:>2}  {row.label}: {cells.summary.mean:.1f}")
    axes.set_xscale("log")
    axes.set_xlabel("No. of parameters (student; log scale; points of one size set apart)")
    axes.set_ylabel(f"Test {WORDS.get(task.main, task.main)} ({task.unit})")
    axes.set_title(f"{plot_titles(task)['vs_params']} (mean ± std over seeds)")
    axes.grid(True, which="both", alpha=0.3)
    if labelled:
        axes.legend(title="Method", fontsize=8)
    key.axis("off")
    key.text(0, 1, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7,
             transform=key.transAxes)
    _save(figure, path)


def plot_val_per_epoch(histories: dict[Row, dict[int, list[float]]], path: Path,
                       task: TaskMetrics) -> None:
    """The task's main metric on the validation split per epoch (``val_<main>``), one panel per
    method (MetaDistil on every k-th batch apart from MetaDistil), one line per configuration
    (mean over seeds; band = ± std where there are ≥ 2 seeds)."""
    panes = sorted({method_name(row.key) for row in histories}) or [methods.baseline().label]
    figure = Figure(figsize=(5 * len(panes), 4.5), layout="constrained")
    panels = figure.subplots(1, len(panes), sharey=True, squeeze=False)[0]
    for axes, method in zip(panels, panes):
        for row, by_epoch in histories.items():
            if method_name(row.key) != method:
                continue
            epochs = sorted(by_epoch)
            means = np.array([np.mean(by_epoch[e]) for e in epochs])
            stds = np.array([np.std(by_epoch[e], ddof=1) if len(by_epoch[e]) > 1 else 0.0
                             for e in epochs])
            line, = axes.plot(epochs, means, marker="o", markersize=3, label=row.label)
            axes.fill_between(epochs, means - stds, means + stds, color=line.get_color(),
                              alpha=0.15)
        axes.set_title(method)
        axes.set_xlabel("Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        if axes.has_data():
            axes.legend(fontsize=6)
    panels[0].set_ylabel(f"Validation {WORDS.get(task.main, task.main)} ({task.unit})")
    _save(figure, path)


def plot_search(ranking: Ranking, param: str, path: Path) -> None:
    """The last epoch's value of the task's main validation metric (``ranking.validation``: SST-2's
    accuracy, MRPC's F1) against one searched value: a point per sample of a configuration (mean
    over its finished seeds), a marker per method, hollow for a run stopped early (at its last
    epoch). A numeric value spanning two decades or more gets a log x-axis; a named one
    (``soft_loss``) one place per name."""
    points: list[tuple[GroupKey, Any, float, bool]] = []
    for key, candidates in ranking.searched.items():
        for candidate in candidates:
            y = candidate.mean(lambda run: at_last_epoch(run, ranking.validation))
            if param in candidate.searched and y is not None:
                points.append((key, candidate.searched[param], y, False))
    for run in ranking.stopped:
        y, values = at_last_epoch(run, ranking.validation), dict(run.searched)
        if param in values and y is not None:
            points.append((run.key, values[param], y, True))
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    axes = figure.subplots()
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for _, x, _, _ in points)
    names = sorted({str(x) for _, x, _, _ in points}) if not numeric else []
    labelled: set[str] = set()
    for key, x, y, stopped in points:
        marker, colour = _style(key)
        name = method_name(key) + (" (stopped early)" if stopped else "")
        axes.plot(x if numeric else names.index(str(x)), y, linestyle="none", marker=marker,
                  markeredgecolor=colour, markerfacecolor="none" if stopped else colour,
                  label=None if name in labelled else name)
        labelled.add(name)
    xs = [x for _, x, _, _ in points]
    logarithmic = numeric and bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 100
    if logarithmic:
        axes.set_xscale("log")
    if names:
        axes.set_xticks(range(len(names)), names)
    axes.set_xlabel(param + (" (log scale)" if logarithmic else ""))
    word = WORDS.get(ranking.task.main, ranking.task.main)
    axes.set_ylabel(f"Validation {word}, last epoch ({ranking.task.unit})")
    axes.set_title(f"Validation {word} against {param}")
    axes.grid(True, which="both", alpha=0.3)
    if labelled:
        axes.legend(title="Method", fontsize=8)
    _save(figure, path)


def _style(key: GroupKey) -> tuple[str, str]:
    """Marker and colour of a method (its registry entry's); a cheaper variant (MetaDistil on every
    k-th batch) gets its own, so that no point of it reads as the method itself."""
    if key.meta_every > 1:
        return "d", "tab:orange"
    known = methods.known(key.method)
    return (known.marker, known.colour) if known else ("o", "tab:green")


def _save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=150)
