"""The report's search section, for sweeps whose runs carry a ``sample`` tag (the rule of what it
ranks: :mod:`orchestrator.report.search`):

- ``search.md`` and the README's "Search": each configuration's best sample with its values,
  the runs the scheduler stopped early, a plot per searched value, and the command that re-runs
  the best over more seeds (:mod:`orchestrator.report.best_space`);
- ``search.csv``: the whole ranking, one line per sample of each searched configuration (values at
  full precision, means over its finished seeds, its run ids) and one per stopped run;
- ``plots/search_<value>.png``: the task's main validation metric against each searched value.

Beside the ranking's own metric, the task's main one (SST-2's accuracy, MRPC's F1;
:mod:`orchestrator.report.metrics`) on validation and test names the columns, as in Tables 1–3.

A sweep without a search whose scheduler stopped runs gets the stopped list alone.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from orchestrator.report import stats
from orchestrator.report.best_space import BEST_SEEDS, BestSpaces, shown
from orchestrator.report.labels import SweepNames, full_label
from orchestrator.report.metrics import ACCURACY, WORDS, run_value
from orchestrator.report.plots import plot_search
from orchestrator.report.reader import GroupKey, TrialRun
from orchestrator.report.render import format_value, markdown_table, write_csv
from orchestrator.report.search import Candidate, Ranking, at_last_epoch
from orchestrator.spec.search import short
from orchestrator.tracking import names as tracking

STOPPED = "stopped"
BEST_HEADERS = ("Configuration", "Best sample", "Values", "{metric} (mean ± std, n)", "Test {main}",
                "Samples ranked", "Runs")
STOPPED_HEADERS = ("Configuration", "Sample", "Seed", "Stopped at epoch", "Last {metric}", "Run")


def plot_paths(ranking: Ranking, out_dir: Path) -> dict[str, Path]:
    """``plots/search_<value>.png`` for each searched value (``bert.lr`` keeps its dot)."""
    return {param: out_dir / "plots" / f"search_{re.sub(r'[^A-Za-z0-9_.@+-]', '_', param)}.png"
            for param in ranking.params}


def write_search(ranking: Ranking, names: SweepNames, best: BestSpaces | None, why_not: str,
                 out_dir: Path, files: list[Path]) -> str:
    """Every file of the section; returns the README's section ("" when there is nothing to say)."""
    if not ranking.searched and not ranking.stopped:
        return ""
    stopped = _stopped_markdown(ranking, names)
    if not ranking.searched:
        (out_dir / "search.md").write_text(f"**Runs stopped early**\n\n{stopped}", encoding="utf-8")
        files.append(out_dir / "search.md")
        return (f"## Stopped early\n\nRuns the scheduler stopped; they enter no mean.\n\n{stopped}\n"
                "File: [search.md](search.md)\n")
    best_md = _best_markdown(ranking, names)
    (out_dir / "search.md").write_text(
        f"**Search: each configuration's best sample**\n\n{best_md}\n**Runs stopped early**\n\n{stopped}",
        encoding="utf-8")
    files.extend([out_dir / "search.md", write_csv(search_frame(ranking, names), out_dir / "search.csv")])
    plots = plot_paths(ranking, out_dir)
    for param, path in plots.items():
        plot_search(ranking, param, path)
        files.append(path)
    samples = {c.sample for found in ranking.searched.values() for c in found}
    shared = [full_label(key, names) for key in ranking.shared]
    task = ranking.task
    word = WORDS.get(task.main, task.main)
    unit = "accuracies in %" if task.main == ACCURACY else f"{word} in {task.unit}"
    parts = [
        "## Search\n",
        f"A random search: {len(samples)} sample(s) of {len(ranking.searched)} configuration(s), "
        f"ranked by {ranking.objective.describe()}. Each row of the tables above is its "
        "configuration's best sample, below; [search.csv](search.csv) ranks every sample, values at "
        f"full precision (3 significant digits here; {unit}).\n",
        best_md,
        (f"No draw reaches {', '.join(shared)}: one trial per seed serves every sample.\n"
         if shared else ""),
        f"### Stopped early\n\nRuns the scheduler stopped; they enter no mean.\n\n{stopped}",
        f"### Validation {word} against each searched value\n\nOne point per sample of a "
        "configuration (mean over its finished seeds), a marker per method; hollow: a run stopped "
        "early, at its last epoch.\n\n"
        + "\n\n".join(f"![{param}]({path.relative_to(out_dir).as_posix()})" for param, path in plots.items())
        + "\n",
        _rerun(best, why_not, names, out_dir, files),
        "Files: [search.md](search.md) · [search.csv](search.csv)\n",
    ]
    return "\n".join(part for part in parts if part)


def _best_markdown(ranking: Ranking, names: SweepNames) -> str:
    rows = []
    for key, found in ranking.searched.items():
        best = found[0]
        test = [run_value(run, ranking.task.main) for run in best.runs]
        stopped = sum(len(c.stopped) for c in found)
        rows.append([full_label(key, names), str(best.sample), _values(best),
                     _summary(best.score), _summary(None if None in test else stats.mean_std(test)),
                     f"{len(found)}" + (f" ({stopped} run(s) stopped)" if stopped else ""),
                     ", ".join(run.run_id[:8] for run in best.runs)])
    main = WORDS.get(ranking.task.main, ranking.task.main)
    return markdown_table([h.format(metric=ranking.objective.metric, main=main) for h in BEST_HEADERS],
                          [("", rows)])


def _stopped_markdown(ranking: Ranking, names: SweepNames) -> str:
    if not ranking.stopped:
        return "No run was stopped early.\n"
    rows = [[full_label(run.key, names), "–" if run.sample is None else str(run.sample), str(run.seed),
             str(run.stopped_at_epoch), _number(ranking.objective.value(run)), run.run_id[:8]]
            for run in ranking.stopped]
    return markdown_table([h.format(metric=ranking.objective.metric) for h in STOPPED_HEADERS],
                          [("", rows)])


def _rerun(best: BestSpaces | None, why_not: str, names: SweepNames, out_dir: Path,
           files: list[Path]) -> str:
    title = f"### Re-run the best over seeds {', '.join(map(str, BEST_SEEDS))}\n\n"
    if best is None:
        return f"{title}No space file written: {why_not}.\n"
    files.extend(path for _, _, path in best.files)
    missing = "".join(f"\n- {line}" for line in best.missing)
    if len(best.files) == 1 and best.files[0][0] is None:
        _, sample, path = best.files[0]
        return (f"{title}Sample {sample} is every configuration's best: one space file fixes its values "
                f"([{path.name}]({path.name})) for the whole grid.\n\n"
                f"```bash\npython -m orchestrator.sweep --space {shown(path)}\n```\n{missing}")
    rows = [[full_label(key, names) if key else "all", "–" if sample is None else str(sample),
             f"[{path.name}]({path.name})",
             f"`python -m orchestrator.sweep --space {shown(path)}`"] for key, sample, path in best.files]
    return (f"{title}The configurations' best samples differ, and a space holds one value per key for "
            "a whole sweep: one space file per configuration, each a sweep of its own (its teachers "
            "trained at its sample).\n\n"
            + markdown_table(("Configuration", "Sample", "Space", "Command"), [("", rows)]) + missing)


def search_frame(ranking: Ranking, names: SweepNames) -> pd.DataFrame:
    """search.csv: per searched configuration its samples, best first (``rank`` 1), then its
    stopped runs; a stopped run's ``metric_mean`` is its own last value (n = 1)."""
    params = ranking.params
    records = []
    stopped_by_key: dict[GroupKey, list[TrialRun]] = {}
    for run in ranking.stopped:
        stopped_by_key.setdefault(run.key, []).append(run)
    for key in sorted(set(ranking.searched) | set(stopped_by_key)):
        for place, candidate in enumerate(ranking.searched.get(key, ()), start=1):
            records.append(_record(candidate, candidate.runs, names, params, ranking, place))
        for run in stopped_by_key.get(key, ()):
            records.append(_record(None, (run,), names, params, ranking, None))
    columns = ["configuration", "method", "teachers", "student", "noise_p", "warmup_epochs",
               "noise_teachers", "meta_every", "recipe", "sample", "rank", "status",
               *(f"searched.{p}" for p in params), "metric", "metric_mean", "metric_std",
               f"{ranking.validation}_mean", f"test_{ranking.task.main}_mean", "n", "seeds",
               "stopped_at_epoch", "run_ids"]
    return pd.DataFrame.from_records(records, columns=columns).astype(
        {"sample": "Int64", "rank": "Int64", "stopped_at_epoch": "Int64"})


def _record(candidate: Candidate | None, runs: tuple[TrialRun, ...], names: SweepNames,
            params: list[str], ranking: Ranking, place: int | None) -> dict:
    first = runs[0]
    key, objective, validation, main = first.key, ranking.objective, ranking.validation, ranking.task.main
    searched = dict(first.searched)
    if candidate is not None:
        score = candidate.score
        val = candidate.mean(lambda r: at_last_epoch(r, validation))
        test = candidate.mean(lambda r: run_value(r, main))
    else:  # a stopped run: its own values, never a mean of several
        value = objective.value(first)
        score = None if value is None else stats.Summary(value, math.nan, 1)
        val = at_last_epoch(first, validation)
        test = None
    return {"configuration": full_label(key, names), "method": key.method,
            "teachers": tracking.teachers_tag(key.teachers), "student": key.student,
            "noise_p": key.noise_p, "warmup_epochs": key.warmup_epochs,
            "noise_teachers": key.noise_teachers, "meta_every": key.meta_every, "recipe": key.recipe,
            "sample": first.sample, "rank": place, "status": "finished" if candidate else STOPPED,
            **{f"searched.{p}": searched.get(p) for p in params},
            "metric": objective.metric, "metric_mean": score.mean if score else None,
            "metric_std": score.std if score and score.n > 1 else None,
            f"{validation}_mean": val, f"test_{main}_mean": test, "n": len(runs),
            "seeds": ";".join(str(r.seed) for r in runs),
            "stopped_at_epoch": first.stopped_at_epoch, "run_ids": ";".join(r.run_id for r in runs)}


def _values(candidate: Candidate) -> str:
    return ", ".join(f"{k}={short(v)}" for k, v in candidate.searched.items()) or "–"


def _summary(summary: stats.Summary | None) -> str:
    return "–" if summary is None else format_value(summary)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
