"""The MLflow names every part shares: a run's name says its configuration, each variation only
when it is on, so distinct configurations get distinct names and a baseline reads
``bert__finetune__seed0``; the child run tags include what tells search samples apart."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.tracking import names as tracking


def test_the_docstrings_example_and_a_baseline():
    assert tracking.run_name("metadistil", "distilbert", ["bert", "roberta"], 0.1, 1, 0) == \
        "distilbert_from_bert+roberta__metadistil__noise0.1__warm1__seed0"
    assert tracking.run_name("finetune", "bert", [], 0.0, 0, 3) == "bert__finetune__seed3"


@pytest.mark.parametrize("kwargs, name", [
    ({"noise_p": 0.1, "noise_teachers": True}, "tinybert_from_bert__metadistil__noise0.1+teachers__seed0"),
    ({"noise_teachers": True}, "tinybert_from_bert__metadistil__seed0"),  # no noise: nothing to share
    ({"meta_every": 4}, "tinybert_from_bert__metadistil__every4__seed0"),
    ({"recipe": "official"}, "tinybert_from_bert__metadistil__official__seed0"),
    ({"sample": 3}, "tinybert_from_bert__metadistil__s3__seed0"),
    ({"sample": 0, "noise_p": 0.05, "warmup_epochs": 2, "meta_every": 2, "recipe": "official"},
     "tinybert_from_bert__metadistil__every2__noise0.05__warm2__official__s0__seed0"),
])
def test_each_variation_appears_only_when_on(kwargs, name):
    base = {"noise_p": 0.0, "warmup_epochs": 0, "seed": 0}
    assert tracking.run_name("metadistil", "tinybert", ["bert"], **{**base, **kwargs}) == name


def test_every_k_th_batch_names_metadistil_only():
    name = tracking.run_name("kd", "tinybert", ["bert"], 0.0, 0, 0, meta_every=4)
    assert name == "tinybert_from_bert__kd__seed0"


def test_distinct_configurations_get_distinct_names():
    configurations = list(itertools.product(
        [("finetune", ()), ("kd", ("bert",)), ("metadistil", ("bert",)), ("metadistil", ("bert", "roberta")),
         ("metadistil", ("roberta", "bert"))],
        ["distilbert", "tinybert"], [0.0, 0.1, 0.15], [False, True], [0, 1], [1, 4], ["", "official"],
        [None, 0, 10], [0, 1]))
    names = set()
    kept = 0
    for (method, teachers), student, noise, shared, warm, every, recipe, sample, seed in configurations:
        if (shared and not noise) or (every > 1 and method != "metadistil") or (method == "finetune" and (
                noise or warm)):
            continue  # what the planner never makes
        kept += 1
        names.add(tracking.run_name(method, student, teachers, noise, warm, seed, noise_teachers=shared,
                                    meta_every=every, recipe=recipe, sample=sample))
    assert len(names) == kept > 1000


def test_labels_keep_the_teachers_order():
    assert tracking.teachers_tag(["roberta", "bert"]) == "roberta+bert"
    assert tracking.model_label("kd", "distilbert", ["roberta", "bert"]) == "distilbert_from_roberta+bert"
    assert tracking.model_label("finetune", "bert", ["roberta"]) == "bert"  # a fine-tune has no teacher


def test_a_search_adds_the_sample_tags_to_the_child_tags():
    assert set(tracking.SAMPLE_TAGS) - set(tracking.TAG_KEYS) == {"sample", "searched"}
    assert len(set(tracking.TAG_KEYS)) == len(tracking.TAG_KEYS) and "trial_key" in tracking.TAG_KEYS
