"""Named recipes: plain-data sets of ``train:`` and ``data:`` values in ``search_spaces/recipes/``.

``recipe: official`` at the top of a space puts the official MetaDistil code's values under the
space's own ``train:`` and ``data:`` (the space's keys win); in a grid block, ``recipe: [default,
official]`` trains the block's trials once with the space's values and once with the recipe's
``train:`` values on top of them, so one sweep compares the two. ``default`` names no file: it is
the space's own values. A recipe's keys are ``trainers.config``'s, checked when it is read.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import yaml

from orchestrator.paths import PROJECT_ROOT
from trainers.config import DataConfig, Hyper

DEFAULT = "default"
RECIPES_DIR = PROJECT_ROOT / "search_spaces" / "recipes"
_EXAMPLE = {"train": "lr: 5.0e-5", "data": "max_length: 128"}


def available() -> list[str]:
    return [DEFAULT, *sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))]


@cache
def load(name: str) -> dict[str, dict[str, Any]]:
    """``{"train": {...}, "data": {...}}`` of recipe ``name`` (empty for ``default``); a
    ``ValueError`` naming the file and the fix for an unknown recipe or key."""
    if name == DEFAULT:
        return {"train": {}, "data": {}}
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown recipe {name!r}; use one of {', '.join(available())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    sections = {"train": Hyper, "data": DataConfig}
    if not isinstance(raw, dict) or set(raw) - set(sections):
        raise ValueError(f"{path}: a recipe holds train: and data: sections only")
    for section, schema in sections.items():
        values = raw.get(section) or {}
        # Iterating a list or a text would read its items or letters as keys.
        if not isinstance(values, dict):
            raise ValueError(f"{path}: {section} = {values!r} is not a mapping; write its values as "
                             f"key: value lines under {section}: (e.g. {_EXAMPLE[section]})")
        names = {f.name for f in dataclasses.fields(schema)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"{path}: unknown key {section}.{sorted(unknown)[0]}")
    return {section: dict(raw.get(section) or {}) for section in sections}


def describe(name: str) -> str:
    """One line for the dry run: ``official: lr=5e-05, batch_size=8, …``."""
    values = {**load(name)["train"], **{f"data.{k}": v for k, v in load(name)["data"].items()}}
    return f"{name}: " + ", ".join(f"{key}={value}" for key, value in values.items())
