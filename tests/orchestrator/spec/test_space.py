"""What spec.py decides itself, beyond refusing bad input (``test_preflight.py``,
``trainers/test_config.py``) and the search's draws (``test_search.py``): the order in which a
trial's values are layered (the space's ``train``, a block's recipe, ``teacher_train`` for a
teacher, ``per_model``), a top-level recipe under the space's own values, which distributions
reach which trial, and reading a file that is not text."""

from __future__ import annotations

import pydantic
import pytest

from orchestrator.spec import recipes
from orchestrator.spec.space import SpecError, load_spec, parse_spec

GRID = [{"methods": ["finetune"], "students": ["distilbert"]},
        {"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert", "tinybert"],
         "recipe": ["default", "official"]}]
SPACE = {"name": "layers", "seeds": [0], "grid": GRID, "data": {"max_length": 128},
         "train": {"lr": 1.0e-4, "epochs": 3, "alpha": 0.9},
         "teacher_train": {"lr": 2.0e-5, "epochs": 4},
         "per_model": {"bert": {"epochs": 5}, "tinybert": {"lr": 1.0e-3}}}
OFFICIAL = recipes.load("official")["train"]


def _values(hyper, *keys):
    return tuple(getattr(hyper, k) for k in keys)


def test_a_trials_values_are_layered_train_recipe_teacher_train_per_model():
    spec = parse_spec(SPACE, "s.yaml")
    assert _values(spec.train_spec("distilbert"), "lr", "epochs", "alpha") == (1.0e-4, 3, 0.9)
    official = spec.train_spec("distilbert", recipe="official")  # the block's recipe over train
    assert _values(official, "lr", "epochs", "alpha", "soft_loss") == (OFFICIAL["lr"], 3, OFFICIAL["alpha"],
                                                                       "mse")
    assert _values(spec.train_spec("tinybert", recipe="official"), "lr") == (1.0e-3,)  # per_model last
    assert _values(spec.train_spec("bert", teacher=True), "lr", "epochs") == (2.0e-5, 5)
    assert _values(spec.train_spec("bert", teacher=True, recipe="official"), "lr") == (2.0e-5,)
    assert _values(spec.train_spec("bert"), "lr", "epochs") == (1.0e-4, 5)  # not as a teacher


def test_a_top_level_recipe_lies_under_the_spaces_own_values():
    spec = parse_spec({**SPACE, "recipe": "official", "data": {"max_length": 64}}, "s.yaml")
    assert (spec.train.lr, spec.train.alpha, spec.train.soft_loss) == (1.0e-4, 0.9, "mse")
    assert spec.data.max_length == 64 and spec.train.temperature == OFFICIAL["temperature"]
    assert spec.trial_recipe("default") == spec.trial_recipe("official") == "official"
    assert spec.train_spec("distilbert", recipe="official").lr == 1.0e-4  # not laid on top again
    plain = parse_spec(SPACE, "s.yaml")
    assert (plain.trial_recipe("default"), plain.trial_recipe("official")) == ("default", "official")


def test_which_distributions_reach_which_trial():
    search = {"algorithm": "random", "num_samples": 3}
    spec = parse_spec({**SPACE, "search": search,
                       "train": {"epochs": 3, "lr": {"loguniform": [1.0e-5, 1.0e-3]},
                                 "alpha": {"uniform": [0.2, 0.8]}},
                       "teacher_train": {"lr": {"loguniform": [1.0e-6, 1.0e-4]}}}, "s.yaml")
    assert set(spec.distributions) == {"train.lr", "train.alpha", "teacher_train.lr"}
    assert spec.searched_keys("distilbert") == ["alpha", "lr"]
    assert spec.searched_keys("distilbert", distils=False) == ["lr"]  # a fine-tune reads no alpha
    assert spec.searched_keys("tinybert") == ["alpha"]  # its per_model lr is plain and wins
    assert spec.searched("bert", teacher=True)["lr"] == spec.distributions["teacher_train.lr"]
    for sample in range(3):
        drawn = spec.sample_values(sample)
        assert drawn == spec.sample_values(sample)
        student = spec.train_spec("distilbert", sample=sample)
        assert (student.lr, student.alpha) == (drawn["train.lr"], drawn["train.alpha"])
        assert spec.train_spec("bert", teacher=True, sample=sample).lr == drawn["teacher_train.lr"]
        assert spec.train_spec("tinybert", sample=sample).lr == 1.0e-3
    assert spec.sample_values(0) != spec.sample_values(1)


def test_a_validated_space_is_frozen():
    spec = parse_spec(SPACE, "s.yaml")
    with pytest.raises(pydantic.ValidationError):
        spec.seeds = [1]


def test_a_file_that_is_not_text_or_not_a_file_is_refused_in_one_line(tmp_path):
    binary = tmp_path / "space.yaml"
    binary.write_bytes(b"name: \xff\xfe\x00grid\n")
    with pytest.raises(SpecError) as error:
        load_spec(binary)
    assert str(error.value) == (f"{binary}: cannot read the file (UnicodeDecodeError); it must be UTF-8 "
                                "text you can read")
    with pytest.raises(SpecError, match=r"search space not found \(shipped: .*smoke\.yaml"):
        load_spec(tmp_path)  # a folder
