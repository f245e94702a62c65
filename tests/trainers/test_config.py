"""The hyper-parameter schema: one definition, read the same from code and from a space file.

A bad value is refused in one line naming the key, the value and the fix, whether a trial is
built in code (``TrainConfig``) or read from a space's ``train:`` / ``data:`` sections (the same
dataclasses, through pydantic); the fields a fine-tune's content key leaves out are the ones
marked as read by distillation only.
"""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.spec.space import SpecError, parse_spec
from tests.conftest import SST2
from trainers.config import ConfigError, DataConfig, Hyper, TrainConfig, distillation_only, unkeyed

DATA = DataConfig(source=str(SST2), train_size=1500, quiz_size=50, test_size=300, max_length=48)
SPACE = {"name": "t", "seeds": [0], "grid": [{"methods": ["finetune"], "students": ["tinybert"]}]}


@pytest.mark.parametrize("kwargs, message", [
    ({"noise_p": 1.5}, "noise_p=1.5: must be a probability in [0, 1]"),
    ({"warmup_epochs": 2}, "warmup_epochs=2: must be in [0, epochs) with epochs=2"),
    ({"teachers": ()}, "teachers=[]: method 'kd' needs at least one teacher"),
    ({"temperature": 0.0}, "temperature=0.0: must be > 0"),
    ({"alpha": -0.1}, "alpha=-0.1: must be in [0, 1]"),
    ({"soft_loss": "l1"}, "soft_loss='l1'"),
])
def test_bad_trial_config_is_refused_before_training(kwargs, message):
    base = {"method": "kd", "student": "tinybert", "data": DATA, "teachers": ("bert",), "epochs": 2}
    with pytest.raises(ConfigError) as error:
        TrainConfig(**{**base, **kwargs})
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("kwargs, key", [({"train_size": 0}, "data.train_size"),
                                         ({"test_split": "dev"}, "data.test_split"),
                                         ({"max_length": 4}, "data.max_length")])
def test_bad_data_config(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        DataConfig(source=str(SST2), **kwargs)


@pytest.mark.parametrize("key, value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0),
                                        ("weight_decay", -0.1), ("warmup_ratio", 1.0),
                                        ("temperature", -2.0), ("alpha", 1.5), ("soft_loss", "l2"),
                                        ("quiz_batch_size", 0), ("meta_every", 0),
                                        ("num_meta_batches", 0), ("pkd_weight", -1.0),
                                        ("teacher_weight_decay", -0.01), ("teacher_warmup_ratio", 1.0),
                                        ("teacher_max_grad_norm", -1.0), ("max_grad_norm", -1.0),
                                        ("noise_token", " "), ("eval_batch_size", 0),
                                        ("teacher_lr", 0.0), ("pilot_lr", -5e-5)])
def test_space_and_code_refuse_a_bad_value_with_the_same_reason(key, value):
    with pytest.raises(ConfigError) as in_code:
        Hyper(**{key: value})
    with pytest.raises(SpecError) as in_space:
        parse_spec({**SPACE, "train": {key: value}}, "space.yaml")
    said = str(in_space.value)
    if key == "soft_loss":  # a Literal: pydantic refuses it before the dataclass sees it (so for
        # pkd_layers and teacher_schedule, tested below)
        assert said.startswith("space.yaml: train.soft_loss = 'l2'") and "'kl' or 'mse'" in said
        return
    assert said == f"space.yaml: train.{key} = {value!r}: {in_code.value.reason}"
    assert "\n" not in said


@pytest.mark.parametrize("key, value, allowed", [("pkd_layers", "first", "'skip' or 'last'"),
                                                 ("teacher_schedule", "cosine", "'linear' or 'constant'")])
def test_a_literal_setting_names_its_choices(key, value, allowed):
    with pytest.raises(ConfigError, match=key):
        Hyper(**{key: value})
    with pytest.raises(SpecError) as in_space:
        parse_spec({**SPACE, "train": {key: value}}, "space.yaml")
    assert str(in_space.value).startswith(f"space.yaml: train.{key} = {value!r}")
    assert allowed in str(in_space.value)


def test_the_official_unroll_and_the_cheaper_variant_are_not_combined():
    with pytest.raises(SpecError) as error:
        parse_spec({**SPACE, "train": {"meta_every": 4, "num_meta_batches": 2}}, "space.yaml")
    assert "num_meta_batches (the official unrolled pilot) or meta_every" in str(error.value)


def test_every_training_setting_is_a_key_of_the_space():
    """The space's train: section is the schema itself: each field, given its default, reads back."""
    defaults = {f.name: getattr(Hyper(), f.name) for f in dataclasses.fields(Hyper)}
    spec = parse_spec({**SPACE, "train": defaults}, "space.yaml")
    assert spec.train == Hyper()
    assert parse_spec({**SPACE, "train": {"lr": 1e-3}}, "space.yaml").train == Hyper(lr=1e-3)


def test_a_space_without_data_source_reads_the_shipped_sst2():
    spec = parse_spec({**SPACE, "data": {"train_size": 100}}, "space.yaml")
    assert spec.data == DataConfig(source=str(SST2.resolve()), train_size=100)


def test_keys_leave_out_what_only_distillation_reads_and_what_changes_no_result():
    assert distillation_only() == ("temperature", "alpha", "soft_loss", "pkd_weight", "pkd_layers",
                                   "teacher_lr", "teacher_weight_decay", "teacher_schedule",
                                   "teacher_warmup_ratio", "teacher_max_grad_norm", "pilot_lr",
                                   "quiz_batch_size", "num_meta_batches", "meta_every",
                                   "teacher_task_loss", "noise_token", "teacher_weights",
                                   "noise_teachers")
    assert set(unkeyed()) == {"eval_batch_size", "teacher_dirs"}


def test_a_trial_config_survives_its_json_form():
    config = TrainConfig(method="metadistil", student="tinybert", data=DATA, teachers=("bert", "roberta"),
                         teacher_dirs=("/a", "/b"), teacher_weights=(1.0, 2.0), epochs=2, warmup_epochs=1)
    assert TrainConfig.from_dict(config.to_dict()) == config
