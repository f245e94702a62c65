"""A configuration's name: the teachers' noise, MetaDistil on every k-th batch (never read as
MetaDistil itself) and the recipe, named only when the sweep used more than one."""

from __future__ import annotations

from orchestrator.report.labels import SweepNames, full_label, ordinal
from orchestrator.report.reader import GroupKey

FINETUNE, KD, METADISTIL = "finetune", "kd", "metadistil"

ONE_RECIPE = SweepNames(frozenset({"bert", "minilm"}), ("official",))
TWO_RECIPES = SweepNames(frozenset({"bert", "minilm"}), ("default", "official"))


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_noise_that_reached_the_teachers() -> None:
    student_only = GroupKey(METADISTIL, ("bert",), "distilbert", noise_p=0.1)
    assert full_label(student_only, ONE_RECIPE) == "MetaDistil BERT→DistilBERT + noise p=0.1"
    both = GroupKey(KD, ("bert",), "distilbert", noise_p=0.1, warmup_epochs=1, noise_teachers=True)
    assert full_label(both, ONE_RECIPE) == ("KD BERT→DistilBERT + noise p=0.1 (teachers too) "
                                            "+ warm start (1 epoch)")


def test_metadistil_on_every_kth_batch_is_named_as_such() -> None:
    assert full_label(GroupKey(METADISTIL, ("minilm",), "minilm@2", meta_every=4), ONE_RECIPE) == (
        "MetaDistil (every 4th batch) MiniLM→MiniLM@2")
    assert full_label(GroupKey(METADISTIL, ("bert",), "distilbert", meta_every=2), ONE_RECIPE) == (
        "MetaDistil (every 2nd batch) BERT→DistilBERT")
    assert full_label(GroupKey(METADISTIL, ("bert",), "distilbert"), ONE_RECIPE) == (
        "MetaDistil BERT→DistilBERT")


def test_the_recipe_is_named_only_when_there_are_several() -> None:
    key = GroupKey(METADISTIL, ("bert",), "distilbert", noise_p=0.1, recipe="official")
    assert full_label(key, ONE_RECIPE) == "MetaDistil BERT→DistilBERT + noise p=0.1"
    assert full_label(key, TWO_RECIPES) == "MetaDistil BERT→DistilBERT + noise p=0.1 [official]"
    assert full_label(GroupKey(FINETUNE, (), "bert"), TWO_RECIPES) == "BERT (teacher) [default]"
    assert SweepNames.of([key, GroupKey(FINETUNE, (), "bert")]) == SweepNames(
        frozenset({"bert"}), ("default", "official"))


def test_a_pruned_student_keeps_its_suffix_and_its_registry_spelling() -> None:
    assert full_label(GroupKey(KD, ("minilm",), "minilm%50"), ONE_RECIPE) == "KD MiniLM→MiniLM%50"
    assert full_label(GroupKey(KD, ("minilm",), "minilm@2%50_100"), ONE_RECIPE) == "KD MiniLM→MiniLM@2%50_100"
