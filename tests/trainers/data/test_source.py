"""Where a space's data come from (``trainers/data/source.py``): its own ``data.source`` first,
then the task's folder in ``METADISTIL_DATA``, then GLUE from the hub."""

from __future__ import annotations

import pytest

from orchestrator.spec.space import parse_spec
from tests.conftest import DATA

SPACE = {"name": "s", "seeds": [0], "grid": [{"methods": ["finetune"], "students": ["distilbert"]}]}


def _source(data: dict | None = None) -> str:
    return parse_spec({**SPACE, **({"data": data} if data is not None else {})}, "space.yaml").data.source


def test_the_variable_names_the_folder_of_each_task(monkeypatch):
    monkeypatch.setenv("METADISTIL_DATA", str(DATA))
    assert _source() == _source({}) == str(DATA / "sst2")
    assert _source({"task": "mrpc"}) == str(DATA / "mrpc")


def test_a_task_the_folder_lacks_is_the_hubs(monkeypatch, tmp_path):
    (tmp_path / "sst2").mkdir()
    monkeypatch.setenv("METADISTIL_DATA", str(tmp_path))
    assert (_source(), _source({"task": "cola"})) == (str(tmp_path / "sst2"), "hub")


def test_a_relative_variable_is_read_from_the_current_folder(monkeypatch):
    monkeypatch.chdir(DATA.parent)
    monkeypatch.setenv("METADISTIL_DATA", DATA.name)
    assert _source() == str(DATA / "sst2")  # absolute: Ray's workers run elsewhere


@pytest.mark.parametrize("value", [None, ""])
def test_unset_or_empty_is_the_hub(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("METADISTIL_DATA", raising=False)
    else:
        monkeypatch.setenv("METADISTIL_DATA", value)
    assert _source() == _source({"task": "mrpc"}) == "hub"


def test_the_space_source_wins_over_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("METADISTIL_DATA", str(tmp_path / "not-there"))  # not even read
    assert _source({"source": "hub"}) == "hub"
    assert _source({"source": "data/sst2"}) == "data/sst2"  # relative to the space (preflight)
