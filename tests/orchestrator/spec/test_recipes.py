"""Named recipes, read from search_spaces/recipes/*.yaml: ``default`` is the space's own values
(no file), every shipped recipe holds keys of the trainers' schema that build a valid
``Hyper``/``DataConfig``, and a bad name or file is refused naming the file and the fix."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.spec import recipes
from tests.conftest import SST2
from trainers.config import DataConfig, Hyper


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """Recipes read from tmp_path instead of the shipped folder (the cache emptied around it)."""
    recipes.load.cache_clear()
    monkeypatch.setattr(recipes, "RECIPES_DIR", tmp_path)
    yield tmp_path
    recipes.load.cache_clear()


def test_default_first_then_the_shipped_files_by_name():
    names = recipes.available()
    assert names[0] == recipes.DEFAULT and names[1:] == sorted(names[1:]) and "official" in names
    assert recipes.load(recipes.DEFAULT) == {"train": {}, "data": {}}


@pytest.mark.parametrize("name", [n for n in recipes.available() if n != recipes.DEFAULT])
def test_every_shipped_recipe_builds_the_trainers_config(name):
    recipe = recipes.load(name)
    hyper = Hyper(**recipe["train"])
    data = DataConfig(source=str(SST2), **recipe["data"])
    assert {k: getattr(hyper, k) for k in recipe["train"]} == recipe["train"]
    assert {k: getattr(data, k) for k in recipe["data"]} == recipe["data"]
    assert recipe["train"] and dataclasses.replace(Hyper(), **recipe["train"]) != Hyper()


def test_official_is_the_official_codes_values():
    official = recipes.load("official")
    assert official["train"]["lr"] == 5.0e-5 and official["train"]["soft_loss"] == "mse"
    assert official["train"]["quiz_batch_size"] is None and official["data"] == {"max_length": 128}
    line = recipes.describe("official")
    assert line.startswith("official: lr=5e-05, batch_size=8, ") and line.endswith(", data.max_length=128")


def test_an_unknown_recipe_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown recipe 'offical'; use one of default, official"):
        recipes.load("offical")


@pytest.mark.parametrize("text, said", [
    ("train:\n  learning_rate: 0.1\n", "unknown key train.learning_rate"),
    ("data:\n  trian_size: 10\n", "unknown key data.trian_size"),
    ("train: {lr: 0.1}\nseeds: [0]\n", "a recipe holds train: and data: sections only"),
    ("- lr\n", "a recipe holds train: and data: sections only"),
    ("train: [lr]\n", "train = ['lr'] is not a mapping; write its values as key: value lines under "
                      "train: (e.g. lr: 5.0e-5)"),
    ("data: 128\n", "data = 128 is not a mapping; write its values as key: value lines under "
                    "data: (e.g. max_length: 128)"),
])
def test_a_bad_recipe_file_is_refused_naming_it(elsewhere, text, said):
    (elsewhere / "mine.yaml").write_text(text)
    assert recipes.available() == [recipes.DEFAULT, "mine"]
    with pytest.raises(ValueError) as error:
        recipes.load("mine")
    assert str(error.value) == f"{elsewhere / 'mine.yaml'}: {said}"


def test_an_empty_recipe_file_sets_nothing(elsewhere):
    (elsewhere / "empty.yaml").write_text("# nothing yet\n")
    assert recipes.load("empty") == {"train": {}, "data": {}}
    assert recipes.describe("empty") == "empty: "
