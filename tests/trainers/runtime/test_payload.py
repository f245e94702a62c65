"""The driver → worker contract: one frozen, typed object that survives pickling as it is."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from tests.conftest import SST2
from trainers.config import DataConfig, TrainConfig
from trainers.record.layout import StorageLayout
from trainers.runtime.payload import TrialPayload, TrialResources


def _payload(tmp_path: Path) -> TrialPayload:
    config = TrainConfig(method="kd", student="tinybert", teachers=("bert",), noise_p=0.1,
                         data=DataConfig(source=str(SST2)), epochs=2)
    return TrialPayload(config=config, key="0123456789abcdef", name="tinybert_from_bert__kd__seed0",
                        run_id="r1", tracking_uri="sqlite:///x.db",
                        resources=TrialResources(workers=2, cpus_per_worker=1.5),
                        layout=StorageLayout(tmp_path / "store"))


def test_the_payload_crosses_a_process_boundary_unchanged(tmp_path):
    payload = _payload(tmp_path)
    again = pickle.loads(pickle.dumps(payload))
    assert again == payload and again.config.noise_p == 0.1 and again.resources.threads == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        again.key = "other"  # type: ignore[misc]


def test_the_layout_puts_every_path_under_the_storage(tmp_path):
    layout = _payload(tmp_path).layout
    key = "0123456789abcdef"
    assert layout.model_dir(key) == tmp_path / "store" / "models" / key
    assert layout.weights_dir(key) == layout.model_dir(key) / "model"
    assert layout.trial_time_file(key) == tmp_path / "store" / "ray" / key / "trial_time.json"
    assert (layout.cache, layout.tune) == (tmp_path / "store" / "cache", tmp_path / "store" / "tune")
    assert not layout.is_done(key)
    layout.result_file(key).parent.mkdir(parents=True)
    layout.result_file(key).write_text("{}")
    assert layout.is_done(key)
