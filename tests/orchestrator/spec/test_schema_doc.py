"""docs/schema.md is what ``python -m orchestrator.spec.schema_doc`` prints from the typed schema, and
every key of every section carries a description: the reference cannot drift from the code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.spec import schema_doc
from tests.conftest import ROOT

SCHEMA_MD = ROOT / "docs" / "schema.md"


def test_the_committed_reference_is_what_the_generator_prints():
    assert SCHEMA_MD.read_text(encoding="utf-8") == schema_doc.render(), (
        f"docs/schema.md is out of date with the schema: run `{schema_doc.COMMAND}` and commit it")


def test_the_command_prints_the_reference():
    printed = subprocess.run([sys.executable, "-m", "orchestrator.spec.schema_doc"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    assert printed == schema_doc.render()


@pytest.mark.parametrize("cls", [cls for _, _, cls in schema_doc.SECTIONS], ids=lambda c: c.__name__)
def test_every_key_says_what_it_is(cls):
    names = [name for name, *_ in schema_doc._fields(cls)]
    documented = schema_doc.attribute_docs(cls)
    missing = [name for name in names if not documented.get(name)]
    assert not missing, (f"{cls.__name__}: give {', '.join(missing)} a docstring (a string on the line "
                         "under the field), then regenerate docs/schema.md")


def test_types_are_named_in_words():
    assert schema_doc.type_text(int | None) == "int or null"
    assert schema_doc.type_text(list[list[str]]) == "list of list of str"
    assert schema_doc.value_text(5e-05) == "`5.0e-05`"  # as YAML reads it back: a float
