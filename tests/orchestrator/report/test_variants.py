"""The row dimensions a sweep tags beside the method: ``noise_teachers``, ``meta_every`` and
``recipe``. Each splits rows everywhere (tables, CSV, significance, predict), the recipe is named
only when a sweep used several, pairing stays within a recipe, and runs logged before the tags
read as the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.report.best import best_runs
from orchestrator.report.build import ReportResult, build_report
from orchestrator.report.render import NOT_RUN
from tests.orchestrator.report.store import (
    Spec,
    Store,
    add_sweep,
    log_trial,
    make_store,
    markdown_rows,
    read_csv,
)

OFFICIAL = "official"
# Two recipes; the fine-tunes of "default" predate the tags, and "official" fine-tunes no student.
RECIPE_SPECS = (
    Spec("finetune", (), "bert", 6),
    Spec("finetune", (), "distilbert", 14),
    Spec("finetune", (), "bert", 5, recipe=OFFICIAL),
    Spec("kd", ("bert",), "distilbert", 20, recipe="default"),
    Spec("kd", ("bert",), "distilbert", 18, recipe=OFFICIAL),
    Spec("metadistil", ("bert",), "distilbert", 10, noise_teachers=False, meta_every=1, recipe=OFFICIAL),
    Spec("metadistil", ("bert",), "distilbert", 12, meta_every=4, recipe=OFFICIAL),
    Spec("metadistil", ("bert",), "distilbert", 22, noise_p=0.1, noise_teachers=False, recipe=OFFICIAL),
    Spec("metadistil", ("bert",), "distilbert", 24, noise_p=0.1, noise_teachers=True, recipe=OFFICIAL),
)
# One recipe, as paper.yaml runs; KD's meta_every and the teachers' flag without noise change nothing.
OFFICIAL_SPECS = (
    Spec("finetune", (), "bert", 6, recipe=OFFICIAL),
    Spec("finetune", (), "distilbert", 14, recipe=OFFICIAL),
    Spec("kd", ("bert",), "distilbert", 20, noise_teachers=True, meta_every=4, recipe=OFFICIAL),
    Spec("metadistil", ("bert",), "distilbert", 12, meta_every=2, recipe=OFFICIAL),
)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> Store:
    store = make_store(tmp_path_factory.mktemp("variants"), empty_database)
    add_sweep(store, "recipes", RECIPE_SPECS, (0, 1), {})
    official_id = add_sweep(store, "official_only", OFFICIAL_SPECS, (0,), {})
    log_trial(store, official_id, "", "official_only",
              Spec("metadistil", ("bert",), "distilbert", 12, meta_every=0, recipe=OFFICIAL), 0, "FINISHED")
    return store


@pytest.fixture(scope="module")
def recipes(variants: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(variants.client, "recipes", tmp_path_factory.mktemp("recipes_out"))


def test_rows_split_by_recipe_and_variant_in_a_fixed_order(recipes: ReportResult) -> None:
    table1 = read_csv(recipes.out_dir / "table1.csv")
    assert list(table1["method"]) == [
        "BERT (teacher) [default]", "BERT (teacher) [official]",
        "DistilBERT (fine-tuned) [default]", "DistilBERT (fine-tuned) [official]",
        "KD BERT→DistilBERT [default]", "KD BERT→DistilBERT [official]",
        "MetaDistil BERT→DistilBERT [default]", "MetaDistil BERT→DistilBERT [official]",
        "MetaDistil (every 4th batch) BERT→DistilBERT [official]"]
    rows = table1.set_index("method")
    assert list(rows["recipe"]) == ["default", "official"] * 4 + ["official"]
    assert rows.loc["DistilBERT (fine-tuned) [official]", "status"] == NOT_RUN
    assert rows.loc["MetaDistil (every 4th batch) BERT→DistilBERT [official]", "meta_every"] == "4"
    # Seeds 0 and 1 get 12 and 13 of 200 wrong; 5 and 6 for the official BERT.
    assert rows.loc["MetaDistil (every 4th batch) BERT→DistilBERT [official]", "accuracy_mean"] == "93.75"
    assert rows.loc["BERT (teacher) [official]", "accuracy_mean"] == "97.25"
    noise = markdown_rows(recipes.out_dir / "table3.md")
    assert noise["+ noise p=0.1 [official]"][1] == "88.75 ± 0.35 (n=2)"
    assert noise["+ noise p=0.1 (teachers too) [official]"][1] == "87.75 ± 0.35 (n=2)"
    assert list(read_csv(recipes.out_dir / "table3.csv")["noise_teachers"]) == ["False", "False", "True"]
    assert not [w for w in recipes.warnings if "in no table" in w]
    readme = (recipes.out_dir / "README.md").read_text(encoding="utf-8")
    assert ("Recipes: the runs used the “default” and “official” training recipes; each label ends "
            "with its own.") in readme


def test_pairing_stays_within_the_recipe(recipes: ReportResult) -> None:
    frame = read_csv(recipes.out_dir / "significance.csv").set_index("method")
    kd_default = frame.loc["KD BERT→DistilBERT [default]"]
    assert kd_default.finetuned_baseline == "DistilBERT (fine-tuned) [default]"
    assert kd_default.finetuned_note == "" and kd_default.note == "is the KD baseline"
    # "official" fine-tuned no student: the default recipe's stands in, and the row says so.
    meta = frame.loc["MetaDistil BERT→DistilBERT [official]"]
    assert meta.finetuned_baseline == "DistilBERT (fine-tuned) [default]"
    assert meta.finetuned_note == "against recipe default's fine-tuned student: official has none"
    # Wrong on 0–9 and 0–10 against the fine-tuned 0–13 and 0–14: Δ = +2 points.
    assert float(meta.finetuned_diff_points) == pytest.approx(2.0)
    # KD of the same recipe (wrong on 0–17, 0–18), not the default recipe's (0–19, 0–20).
    assert meta.baseline == "KD BERT→DistilBERT [official]"
    assert float(meta.diff_points) == pytest.approx(4.0)
    every4 = frame.loc["MetaDistil (every 4th batch) BERT→DistilBERT [official]"]
    assert every4.baseline == "KD BERT→DistilBERT [official]"
    assert float(every4.diff_points) == pytest.approx(3.0)
    assert set(frame.index) >= {"MetaDistil BERT→DistilBERT + noise p=0.1 [official]",
                                "MetaDistil BERT→DistilBERT + noise p=0.1 (teachers too) [official]"}
    markdown = (recipes.out_dir / "significance.md").read_text(encoding="utf-8")
    assert "(against recipe default's fine-tuned student: official has none)" in markdown


def test_predict_keeps_one_model_per_configuration(variants: Store) -> None:
    labels = [label for label, _ in best_runs(variants.client, "recipes")]
    assert len(labels) == len(set(labels)) == len(RECIPE_SPECS)
    assert labels[:2] == ["BERT (teacher) [default]", "BERT (teacher) [official]"]
    assert "MetaDistil (every 4th batch) BERT→DistilBERT [official]" in labels


def test_one_recipe_is_not_named(variants: Store, tmp_path: Path) -> None:
    result = build_report(variants.client, "official_only", tmp_path)
    table1 = read_csv(tmp_path / "table1.csv").set_index("method")
    assert list(table1.index) == ["BERT (teacher)", "DistilBERT (fine-tuned)", "KD BERT→DistilBERT",
                                  "MetaDistil BERT→DistilBERT",
                                  "MetaDistil (every 2nd batch) BERT→DistilBERT"]
    # KD is never "every k-th batch", and without noise nothing reached the teachers.
    kd = table1.loc["KD BERT→DistilBERT"]
    assert (kd.meta_every, kd.noise_teachers, kd.recipe, kd.status) == ("1", "False", OFFICIAL, "run")
    assert any("meta_every tag 0 is not >= 1" in warning for warning in result.warnings)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "Recipe: every run used the “official” training recipe." in readme


def test_runs_without_the_tags_read_as_defaults(paper: ReportResult, store: Store) -> None:
    experiment = store.client.get_experiment_by_name("paper_mini")
    assert experiment is not None
    tags = store.client.search_runs([experiment.experiment_id])[0].data.tags
    assert not {"noise_teachers", "meta_every", "recipe"} & set(tags)
    for name in ("table1", "table2", "table3"):
        frame = read_csv(paper.out_dir / f"{name}.csv")
        assert set(frame["recipe"]) == {"default"} and set(frame["meta_every"]) == {"1"}
        assert set(frame["noise_teachers"]) == {"False"}
    assert "| MetaDistil BERT+RoBERTa→DistilBERT |" in paper.table1_markdown  # no "[default]"
    readme = (paper.out_dir / "README.md").read_text(encoding="utf-8")
    assert "Recipe: every run used the “default” training recipe." in readme


def test_a_teacher_trained_once_serves_both_recipes_without_a_not_run_row(
        tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> None:
    """As recipes_compare.yaml runs: the teacher is fine-tuned under the sweep's recipe only, and
    both recipes distil from it; no "[official]" teacher row is owed."""
    store = make_store(tmp_path_factory.mktemp("shared_teacher"), empty_database)
    add_sweep(store, "compare", (Spec("finetune", (), "bert", 6, recipe="default"),
                                 Spec("finetune", (), "distilbert", 14, recipe="default"),
                                 Spec("finetune", (), "distilbert", 13, recipe=OFFICIAL),
                                 Spec("kd", ("bert",), "distilbert", 20, recipe="default"),
                                 Spec("kd", ("bert",), "distilbert", 18, recipe=OFFICIAL)), (0,), {})
    result = build_report(store.client, "compare", tmp_path_factory.mktemp("compare_out"))
    methods = list(read_csv(result.out_dir / "table1.csv")["method"])
    assert [m for m in methods if "(teacher)" in m] == ["BERT (teacher) [default]"]
    assert "KD BERT→DistilBERT [official]" in methods


def test_each_configuration_is_tested_against_itself_under_the_reference_recipe(
        recipes: ReportResult) -> None:
    """Only configurations run under both recipes are paired: KD and the teacher here."""
    table = read_csv(recipes.out_dir / "recipes.csv")
    assert list(table["configuration"]) == ["BERT (teacher) [official]", "KD BERT→DistilBERT [official]"]
    assert list(table["against"]) == ["BERT (teacher) [default]", "KD BERT→DistilBERT [default]"]
    assert list(table["n_examples"]) == ["400", "400"]  # two seeds × 200 test examples, paired
    # KD: seeds 0 and 1 get 18, 19 (official) and 20, 21 (default) of 200 wrong: +1.0 point.
    assert float(table.loc[1, "diff_points"]) == pytest.approx(1.0)
    assert "## Recipes against each other" in (recipes.out_dir / "README.md").read_text()


def test_a_one_recipe_sweep_has_no_recipe_table(variants: Store, tmp_path: Path) -> None:
    result = build_report(variants.client, "official_only", tmp_path)
    assert not (result.out_dir / "recipes.csv").exists()
    assert "Recipes against each other" not in (result.out_dir / "README.md").read_text()
