"""An Optuna search's bookkeeping (its run through Tune's calls: ``test_optuna_search.py``): a
study's id is its grid combination, distributions and search, never the sample; the suggestions
file reads back what was added, whole; a finished trial is told its last epoch's metric; each
session's sampler seed differs by what was recorded."""

from __future__ import annotations

import json

from orchestrator.plan.studies import Record, Study, Suggestion, group_of, told
from orchestrator.spec.search import Distribution, SearchSpec
from trainers.record.layout import StorageLayout

TAGS = {"method": "kd", "student": "distilbert", "teachers": "bert", "seed": "0"}
SPACE = {"lr": Distribution("loguniform", (1e-5, 1e-3)), "alpha": Distribution("uniform", (0.2, 0.8))}
SEARCH = SearchSpec(algorithm="optuna", num_samples=4)


def test_a_studys_id_ignores_the_sample_and_changes_with_what_makes_it_another_search():
    group = group_of(TAGS, SPACE, SEARCH)
    sampled = {**TAGS, "sample": "3", "searched": '{"lr":0.0001}', "trial_key": "abc"}
    assert group_of(sampled, SPACE, SEARCH) == group == group_of(TAGS, dict(reversed(SPACE.items())), SEARCH)
    others = [group_of({**TAGS, "student": "tinybert"}, SPACE, SEARCH),
              group_of(TAGS, {**SPACE, "alpha": Distribution("uniform", (0.1, 0.8))}, SEARCH),
              group_of(TAGS, {"lr": SPACE["lr"]}, SEARCH),
              group_of(TAGS, SPACE, SEARCH.model_copy(update={"seed": 1})),
              group_of(TAGS, SPACE, SEARCH.model_copy(update={"mode": "min"})),
              group_of(TAGS, SPACE, SEARCH.model_copy(update={"metric": "train_loss"}))]
    assert len({group, *others}) == len(others) + 1
    assert SEARCH.model_copy(update={"num_samples": 9}) != SEARCH
    assert group_of(TAGS, SPACE, SEARCH.model_copy(update={"num_samples": 9})) == group  # asking for more


def test_a_studys_id_tells_apart_spaces_that_differ_beyond_the_names_3_digits():
    """str() of a distribution keeps 3 significant digits (names and the dry run): a space that
    differs at the 4th is another search all the same."""
    spaces = [SPACE, {**SPACE, "lr": Distribution("loguniform", (1e-5, 1.001e-3))},
              {**SPACE, "alpha": Distribution("choice", (0.2, 0.5))},
              {**SPACE, "alpha": Distribution("choice", (0.2, 0.5001))}]
    assert str(spaces[0]["lr"]) == str(spaces[1]["lr"]) and str(spaces[2]["alpha"]) == str(spaces[3]["alpha"])
    assert len({group_of(TAGS, space, SEARCH) for space in spaces}) == len(spaces)


def test_the_record_reads_back_what_was_added_for_each_study(tmp_path):
    layout = StorageLayout(tmp_path)
    assert Record.read(layout, "sweep").studies == {}
    record = Record.read(layout, "sweep")
    record.add("g1", Suggestion(0, {"lr": 0.000123456789, "alpha": 0.5}))
    record.add("g2", Suggestion(0, {"lr": 1e-4}))
    record.add("g1", Suggestion(1, {"lr": 3e-5, "alpha": 0.25}))
    again = Record.read(layout, "sweep")
    assert again.studies == {"g1": [Suggestion(0, {"lr": 0.000123456789, "alpha": 0.5}),
                                    Suggestion(1, {"lr": 3e-5, "alpha": 0.25})],
                             "g2": [Suggestion(0, {"lr": 1e-4})]}
    assert sorted(p.name for p in layout.suggestions_file("sweep").parent.iterdir()) == ["sweep.json"]
    assert Record.read(layout, "other").studies == {}  # one file per sweep


def test_a_finished_trial_is_told_its_last_epochs_metric(tmp_path):
    layout = StorageLayout(tmp_path)
    assert told(layout, "k", "val_accuracy") is None
    layout.result_file("k").parent.mkdir(parents=True)
    layout.result_file("k").write_text(json.dumps({"history": [
        {"val_accuracy": 0.6, "train_loss": 0.9}, {"val_accuracy": 0.7, "train_loss": 0.5},
        {"val_accuracy": 0.65, "train_loss": 0.4}]}))
    assert told(layout, "k", "val_accuracy") == (0.65, [0.6, 0.7, 0.65])  # the last, not the best
    assert told(layout, "k", "train_loss") == (0.4, [0.9, 0.5, 0.4])


def test_each_session_seeds_its_sampler_by_what_is_recorded():
    study = Study("g1", template=None, space=SPACE)
    resumed = Study("g1", template=None, space=SPACE, recorded=(Suggestion(0, {"lr": 1e-4}),))
    assert study.seed(SEARCH) == Study("g1", None, SPACE).seed(SEARCH)
    assert len({study.seed(SEARCH), resumed.seed(SEARCH), Study("g2", None, SPACE).seed(SEARCH),
                study.seed(SEARCH.model_copy(update={"seed": 1}))}) == 4
