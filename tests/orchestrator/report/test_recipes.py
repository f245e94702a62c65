"""The recipe table, from hand-built runs: each configuration under a second recipe against its
twin under the reference recipe (``default`` when the sweep used it), paired seed by seed on the
same test examples; no table for a one-recipe sweep; recipes.md and recipes.csv written."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from orchestrator.report.labels import SweepNames
from orchestrator.report.reader import GroupKey, TrialRun
from orchestrator.report.recipes import recipe_comparisons, reference_recipe, write_recipe_comparisons

N = 400
KD = GroupKey("kd", ("bert",), "distilbert")
FT = GroupKey("finetune", (), "distilbert")


class Predictions:
    """The report's per-run predictions, from memory: run ``<name>`` gets its first ``wrong`` wrong."""

    def __init__(self, wrong: dict[str, int]) -> None:
        self.wrong = wrong

    def get(self, run_id: str) -> pd.DataFrame | None:
        if run_id not in self.wrong:
            return None
        labels = np.arange(N) % 2
        predictions = labels.copy()
        predictions[:self.wrong[run_id]] = 1 - predictions[:self.wrong[run_id]]
        return pd.DataFrame({"index": np.arange(N), "label": labels, "prediction": predictions})


def _runs(key: GroupKey, seeds=(0, 1)) -> tuple[TrialRun, ...]:
    return tuple(TrialRun(run_id=f"{key.method}-{key.recipe}-{seed}", run_name="", key=key, seed=seed,
                          accuracy=90.0, student_params=1, teacher_params=2, size="tiny", trial_key="",
                          start_time=0) for seed in seeds)


def _groups(*recipes: str) -> dict[GroupKey, tuple[TrialRun, ...]]:
    return {replace(key, recipe=r): _runs(replace(key, recipe=r)) for key in (KD, FT) for r in recipes}


def test_the_reference_is_default_where_the_sweep_used_it():
    assert reference_recipe(SweepNames(frozenset(), ("default", "official"))) == "default"
    assert reference_recipe(SweepNames(frozenset(), ("mine", "official"))) == "mine"


def test_a_one_recipe_sweep_has_no_comparison_and_no_files(tmp_path):
    groups = _groups("official")
    assert recipe_comparisons(groups, SweepNames.of(groups), Predictions({})) == []
    files: list = []
    assert write_recipe_comparisons([], tmp_path, files) == ""
    assert files == [] and not list(tmp_path.iterdir())


def test_each_configuration_against_its_twin_under_the_reference(tmp_path):
    groups = _groups("default", "official")
    del groups[replace(FT, recipe="default")]  # a twin with no runs: no comparison
    wrong = {f"kd-default-{s}": 40 for s in (0, 1)} | {f"kd-official-{s}": 20 for s in (0, 1)}
    items = recipe_comparisons(groups, SweepNames.of(groups), Predictions(wrong))
    (item,) = items
    assert item.row.key == replace(KD, recipe="official")
    assert item.baseline.key == replace(KD, recipe="default")
    assert item.row.label == "KD BERT→DistilBERT [official]" and item.seeds == (0, 1)
    assert item.bootstrap.n == 2 * N and item.bootstrap.diff == pytest.approx(20 / N)  # 5 points better
    assert (item.mcnemar.a_only, item.mcnemar.b_only) == (40, 0)  # both seeds: 20 only official gets right
    files: list = []
    markdown = write_recipe_comparisons(items, tmp_path, files)
    assert files == [tmp_path / "recipes.md", tmp_path / "recipes.csv"]
    row = "| KD BERT→DistilBERT [official] | official | KD BERT→DistilBERT [default] | 0, 1 | 800 | +5.00 ["
    assert row in markdown and markdown in (tmp_path / "recipes.md").read_text()
    csv = pd.read_csv(tmp_path / "recipes.csv")
    assert csv.loc[0, "diff_points"] == pytest.approx(5.0) and csv.loc[0, "seeds"] == "0;1"
    assert csv.loc[0, "run_ids"] == "kd-official-0;kd-official-1"


def test_a_comparison_without_predictions_says_why(tmp_path):
    groups = _groups("default", "official")
    items = recipe_comparisons(groups, SweepNames.of(groups), Predictions({}))
    assert [c.row.key.method for c in items] == ["finetune", "kd"]  # the tables' order
    assert all(c.bootstrap is None and "no predictions/test_predictions.csv in run" in c.note for c in items)
    markdown = write_recipe_comparisons(items, tmp_path, [])
    assert markdown.count("| – | – | no predictions") == 2
    assert pd.read_csv(tmp_path / "recipes.csv")["n_examples"].isna().all()
