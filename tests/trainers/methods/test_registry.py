"""The methods' registry: every registered method is whole, and the code outside the methods'
modules reads methods from the registry instead of naming them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainers.config import distillation_only
from trainers.methods import registry as methods
from trainers.methods.registry import Teachers

ROOT = Path(__file__).resolve().parents[3]
# The methods' own modules, and the registry that lists them, may name methods.
OWN = {f"trainers/methods/{name}.py" for name in ("registry", "finetune", "kd", "metadistil", "mutual")}


def test_the_registry_lists_each_module_once_under_its_own_name():
    registry = methods.registry()
    assert list(registry) == ["finetune", "kd", "metadistil", "mutual"]
    assert [m.teachers for m in registry.values()] == [Teachers.NONE, Teachers.FROZEN, Teachers.TRAINABLE,
                                                        Teachers.NONE]
    assert [m.cohort for m in registry.values()] == [False, False, False, True]
    assert methods.baseline().name == "finetune" and not methods.baseline().distils
    assert len({m.marker for m in registry.values()}) == len(registry)  # told apart in the plots


@pytest.mark.parametrize("name", ["finetune", "kd", "metadistil", "mutual"])
def test_a_method_reads_only_distillation_settings_and_compares_with_a_registered_method(name):
    method = methods.get(name)
    assert set(method.reads) <= set(distillation_only())
    assert not method.reads or method.distils
    assert method.compared_with in ("", *methods.names())


def test_an_unknown_name_is_refused_with_the_registered_ones():
    assert methods.check_name("kd") is None
    assert methods.check_name("dml") == "Input should be 'finetune', 'kd', 'metadistil' or 'mutual'"
    assert methods.known("dml") is None


def test_no_code_outside_the_methods_modules_names_a_method():
    """``"kd"``, ``"metadistil"``, ``"finetune"`` as string literals, or the old constants, appear
    only in the methods' own modules (YAML and tests aside)."""
    literal = re.compile(r"""["'](finetune|kd|metadistil|mutual)["']|\b(FINETUNE|METADISTIL)\b""")
    found = []
    for path in sorted([*ROOT.glob("orchestrator/**/*.py"), *ROOT.glob("trainers/**/*.py")]):
        relative = path.relative_to(ROOT).as_posix()
        if relative in OWN:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if literal.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []
