"""The storage layout: every path lies under the storage root; a trial is done by its result
file alone and stopped by a marker outside ``models/`` (which holds finished trials only); an
Optuna record per sweep. (The finished-trial paths: ``test_payload.py``.)"""

from __future__ import annotations

from trainers.record.layout import StorageLayout

KEY = "0123456789abcdef"


def test_every_path_is_under_the_root_and_names_its_key(tmp_path):
    layout = StorageLayout(tmp_path / "store")
    paths = [layout.models, layout.cache, layout.ray, layout.tune, layout.model_dir(KEY),
             layout.weights_dir(KEY), layout.result_file(KEY), layout.trial_time_file(KEY),
             layout.stopped_file(KEY), layout.suggestions_file("sweep")]
    assert all(p.is_relative_to(tmp_path / "store") for p in paths)
    assert len(set(paths)) == len(paths)
    assert all(KEY in p.parts or f"{KEY}.json" in p.parts for p in paths[4:9])
    assert layout.suggestions_file("sweep") == tmp_path / "store" / "optuna" / "sweep.json"


def test_done_means_the_result_file_not_the_folder(tmp_path):
    layout = StorageLayout(tmp_path)
    layout.weights_dir(KEY).mkdir(parents=True)  # a model written, its result not yet
    assert not layout.is_done(KEY)
    layout.result_file(KEY).write_text("{}")
    assert layout.is_done(KEY) and not layout.is_done("other")


def test_a_stopped_trial_is_marked_outside_the_finished_models(tmp_path):
    layout = StorageLayout(tmp_path)
    marker = layout.stopped_file(KEY)
    assert not marker.is_relative_to(layout.models)
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    assert layout.is_stopped(KEY) and not layout.is_done(KEY)
    assert not layout.models.exists()  # a stopped trial leaves no folder read as a finished one
