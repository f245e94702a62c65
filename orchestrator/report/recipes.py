"""Does the recipe matter? Each configuration run under a second recipe against the same
configuration (method, teachers, student, noise, warm start) under the sweep's reference recipe
(``default`` when the sweep used it, else the first by name), paired seed by seed on the same test
examples as the significance table (:func:`orchestrator.report.significance.compare`), Δ of the
task's main metric as there. Only sweeps that used more than one recipe get this table
(``recipes_compare.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from orchestrator.report.labels import SweepNames, full_label
from orchestrator.report.predictions import Predictions
from orchestrator.report.reader import GroupKey, TrialRun
from orchestrator.report.render import format_p, markdown_table, write_csv
from orchestrator.report.significance import Comparison, compare
from orchestrator.report.significance_table import significance_headers
from orchestrator.report.tables import Row
from orchestrator.spec.recipes import DEFAULT

HEADERS = ("Configuration", "Recipe", "Against", "Seeds", "Examples", "Δ accuracy (points) [95 % CI]",
           "p (bootstrap)", "Only this right / only the other right", "p (McNemar)")


def reference_recipe(names: SweepNames) -> str:
    return DEFAULT if DEFAULT in names.recipes else names.recipes[0]


def recipe_comparisons(groups: dict[GroupKey, tuple[TrialRun, ...]], names: SweepNames,
                       predictions: Predictions, metric: str = "accuracy") -> list[Comparison]:
    """Every configuration with runs under a non-reference recipe whose twin under the reference
    recipe has runs too, in the tables' order."""
    if len(names.recipes) < 2:
        return []
    reference = reference_recipe(names)
    result = []
    for key in sorted(groups):
        twin = replace(key, recipe=reference)
        if key.recipe == reference or twin not in groups:
            continue
        result.append(compare(Row(full_label(key, names), key, groups[key]),
                              Row(full_label(twin, names), twin, groups[twin]), predictions,
                              f"recipe {reference}", metric))
    return result


def _cells(c: Comparison) -> list[str]:
    if c.bootstrap is None or c.mcnemar is None:
        return [c.row.label, c.row.key.recipe, c.baseline.label, "–", "–", c.note, "–", "–", "–"]
    boot = c.bootstrap
    return [c.row.label, c.row.key.recipe, c.baseline.label, ", ".join(map(str, c.seeds)), f"{boot.n:,}",
            f"{100 * boot.diff:+.2f} [{100 * boot.ci_low:+.2f}, {100 * boot.ci_high:+.2f}]",
            format_p(boot.p_value), f"{c.mcnemar.a_only} / {c.mcnemar.b_only}", format_p(c.mcnemar.p_value)]


def write_recipe_comparisons(items: Sequence[Comparison], out_dir: Path, files: list[Path],
                             metric: str = "accuracy") -> str:
    """``recipes.md`` and ``recipes.csv``; returns the Markdown table ("" when there is none)."""
    if not items:
        return ""
    markdown = markdown_table(significance_headers(metric, HEADERS), [("", [_cells(c) for c in items])])
    (out_dir / "recipes.md").write_text(
        "**Recipes: each configuration against the same configuration under the reference recipe**"
        f"\n\n{markdown}", encoding="utf-8")
    frame = pd.DataFrame.from_records([{
        "configuration": c.row.label, "recipe": c.row.key.recipe, "against": c.baseline.label,
        "seeds": ";".join(map(str, c.seeds)),
        "n_examples": c.bootstrap.n if c.bootstrap else None,
        "diff_points": 100 * c.bootstrap.diff if c.bootstrap else None,
        "ci_low_points": 100 * c.bootstrap.ci_low if c.bootstrap else None,
        "ci_high_points": 100 * c.bootstrap.ci_high if c.bootstrap else None,
        "p_bootstrap": c.bootstrap.p_value if c.bootstrap else None,
        "p_mcnemar": c.mcnemar.p_value if c.mcnemar else None, "note": c.note,
        "run_ids": ";".join(r.run_id for r in c.row.runs),
        "baseline_run_ids": ";".join(r.run_id for r in c.baseline.runs)} for c in items])
    if metric != "accuracy":  # as significance.csv: what the diff columns are of
        frame.insert(0, "metric", metric)
    files.extend([out_dir / "recipes.md", write_csv(frame, out_dir / "recipes.csv")])
    return markdown
