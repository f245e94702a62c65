"""Accuracy against cost: the Pareto front of a sweep's models and its plot (issue 29, item 3).

Each model (a configuration's fp32 model, and its int8 variant) is a point (s, c): its main test
metric s (higher is better) and a cost c (latency at batch 1, or size on disk; lower is better).
Point q *dominates* p when it is no worse in both and better in one:

    q ≻ p  ⇔  s_q ≥ s_p  ∧  c_q ≤ c_p  ∧  (s_q > s_p ∨ c_q < c_p).

The Pareto front is the set of points no other point dominates: the models worth choosing at some
price. Dominance is a strict partial order on a finite set, so every point off the front is
dominated by one on it (follow dominators: the chain cannot cycle and must end on the front).
Two equal points dominate neither, so both are on the front or both off it.

:func:`pareto_front` finds it in O(n log n): sorted by cost (ties: the higher score first), a
point is on the front exactly when its score beats every cheaper point's, or equals the point
that set the best so far at the same cost (an equal twin). The plot draws both panels, score
against latency p50 and against size, on log scales, a marker per variant and a colour per
configuration (the key beside the panels), the front's points ringed, numbered and joined by the
staircase that bounds what is reachable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from orchestrator.report.cost_table import VARIANTS, CostTable
from orchestrator.report.metrics import WORDS, TaskMetrics
from trainers.models.cost_names import LATENCY_P50, SIZE

MARKERS = {"fp32": "o", "int8": "^"}
# Each panel: the cost figure and its axis label.
PANELS = ((LATENCY_P50, "CPU latency at batch 1, median (ms)"), (SIZE, "Size on disk (MB)"))


def dominates(q: tuple[float, float], p: tuple[float, float]) -> bool:
    """Whether (score, cost) ``q`` dominates ``p``: no worse in both, better in one."""
    return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """The indices (ascending) of the (score, cost) points that no other point dominates."""
    if any(math.isnan(s) or math.isnan(c) for s, c in points):
        raise ValueError("a point with a NaN score or cost has no place on a front; leave it out")
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front: list[int] = []
    best: tuple[float, float] | None = None  # the point that set the best score so far
    for i in order:
        if best is None or points[i][0] > best[0] or points[i] == best:
            front.append(i)
            best = points[i]
    return sorted(front)


@dataclass(frozen=True)
class Point:
    """A model on the plot: its configuration's number and label, its variant, its score's mean
    and spread (NaN: one seed) and each cost figure's mean."""

    number: int
    label: str
    variant: str
    score: float
    spread: float
    cost: dict[str, float]

    @property
    def name(self) -> str:
        return f"{self.label}, {self.variant}"


def points_of(table: CostTable) -> list[Point]:
    """A point per configuration and variant that has a score and every cost figure plotted."""
    points = []
    for number, row in enumerate(table.rows, start=1):
        for name in VARIANTS:
            variant = row.variant(name)
            cost = {figure: variant.mean(figure) for figure, _ in PANELS}
            if variant.score is not None and all(v is not None for v in cost.values()):
                points.append(Point(number, row.row.label, name, variant.score.mean, variant.score.std, cost))
    return points


def fronts(points: Sequence[Point]) -> dict[str, list[Point]]:
    """Each panel's front, cheapest first."""
    result = {}
    for figure, _ in PANELS:
        members = [points[i] for i in pareto_front([(p.score, p.cost[figure]) for p in points])]
        result[figure] = sorted(members, key=lambda p: (p.cost[figure], -p.score))
    return result


def plot_frontier(points: Sequence[Point], path: Path, task: TaskMetrics) -> None:
    """Two panels, score against latency p50 and against size, each on a log scale (a cost is
    compared by its ratio: int8 ÷ fp32, student ÷ teacher); error bars: std over seeds.

    Students of one architecture share a size to the byte and their scores lie tenths of a point
    apart, so a number beside every point would be unreadable: each configuration has a colour
    (the key beside the panels), each variant a marker, and the front's points their number."""
    front = fronts(points)
    labels = sorted({(p.number, p.label) for p in points})
    palette = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colour = {number: palette(i % palette.N) for i, (number, _) in enumerate(labels)}
    figure = Figure(figsize=(15, max(6.5, 1.5 + 0.25 * len(labels))), layout="constrained")
    *panels, key = figure.subplots(1, 3, width_ratios=[3, 3, 1.7])
    for axes, (figure_name, title) in zip(panels, PANELS):
        placed = _set_apart([p.cost[figure_name] for p in points])
        for point, x in zip(points, placed):
            axes.errorbar(x, point.score, yerr=0.0 if math.isnan(point.spread) else point.spread,
                          marker=MARKERS[point.variant], color=colour[point.number], linestyle="none",
                          capsize=2, markeredgecolor="black", markeredgewidth=0.4)
        on_front = sorted((placed[points.index(p)], p.score, p.number) for p in front[figure_name])
        xs, ys = [x for x, _, _ in on_front], [y for _, y, _ in on_front]
        axes.plot(xs, ys, drawstyle="steps-post", color="black", linestyle="--", linewidth=1)
        axes.scatter(xs, ys, s=200, facecolors="none", edgecolors="black", linewidths=1.2, zorder=3)
        for x, y, number in on_front:
            axes.annotate(str(number), (x, y), fontsize=8, fontweight="bold", textcoords="offset points",
                          xytext=(-4, 9))
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel(f"{title} (log scale; points of one cost set apart)")
        axes.set_title(f"Test {WORDS.get(task.main, task.main)} against "
                       f"{'latency' if figure_name == LATENCY_P50 else 'size'}")
        axes.grid(True, which="both", alpha=0.3)
    panels[0].set_ylabel(f"Test {WORDS.get(task.main, task.main)} ({task.unit}; mean ± std over seeds)")
    panels[0].legend(handles=[
        Line2D([], [], marker=MARKERS["fp32"], markerfacecolor="white", color="black", linestyle="none",
               label="fp32"),
        Line2D([], [], marker=MARKERS["int8"], markerfacecolor="white", color="black", linestyle="none",
               label="int8 (dynamic)"),
        Line2D([], [], marker="o", markersize=13, markerfacecolor="none", color="black", linestyle="--",
               linewidth=1, label="Pareto front (numbered)")], fontsize=8)
    key.axis("off")
    key.legend(handles=[Line2D([], [], marker="s", color=colour[n], linestyle="none", label=f"{n}  {label}")
                        for n, label in labels], loc="upper left", fontsize=7, frameon=False,
               title="Configuration", title_fontsize=8, alignment="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=150)


def _set_apart(costs: Sequence[float]) -> list[float]:
    """Where each point is drawn: points of one exact cost (students of one architecture share a
    size to the byte) are spread 1.2 % apart around it, evenly on the log axis, rather than drawn
    over each other."""
    crowd: dict[float, int] = {}
    for cost in costs:
        crowd[cost] = crowd.get(cost, 0) + 1
    seen: dict[float, int] = {}
    placed = []
    for cost in costs:
        place = seen.get(cost, 0)
        seen[cost] = place + 1
        placed.append(cost * 10 ** (0.005 * (place - (crowd[cost] - 1) / 2)))
    return placed
