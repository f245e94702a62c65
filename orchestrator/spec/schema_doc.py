"""The search-space reference, ``docs/schema.md``, printed from the typed schema so it cannot drift.

``python -m orchestrator.spec.schema_doc > docs/schema.md`` regenerates it; ``tests/orchestrator/
test_schema_doc.py`` fails when the committed file differs from what this prints. Every key of a
space comes from the classes that validate it (``orchestrator/spec/space.py``'s ``SweepSpec``,
``orchestrator/spec/grid.py``'s ``GridBlock``, ``orchestrator/spec/search.py``'s ``SearchSpec``,
``trainers/config.py``'s ``DataConfig``, ``ModelsConfig`` and ``Hyper``): its type, its default,
the constraints pydantic holds, and its attribute docstring (the string under the field), which
states what it is and the range its class's checks enforce. The names a key takes from a registry
(methods, tasks, recipes) are read from the registry.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from orchestrator.spec import grid, recipes, search
from orchestrator.spec import space as spec
from orchestrator.spec.grid import GridBlock
from orchestrator.spec.search import SearchSpec
from orchestrator.spec.space import ResourcesSpec, SweepSpec
from trainers.config import DataConfig, Hyper, ModelsConfig
from trainers.data import tasks
from trainers.methods import registry as methods

COMMAND = "python -m orchestrator.spec.schema_doc > docs/schema.md"

# (heading, anchor, class): the sections of a space, in the order a space usually writes them.
SECTIONS: tuple[tuple[str, str, type], ...] = (
    ("Top level", "top-level", SweepSpec),
    ("`data:`", "data", DataConfig),
    ("`models:`", "models", ModelsConfig),
    ("`train:`, `teacher_train:`, `per_model.<model>:`", "train-teacher_train-per_modelmodel", Hyper),
    ("`grid:` blocks", "grid-blocks", GridBlock),
    ("`resources:`", "resources", ResourcesSpec),
    ("`search:`", "search", SearchSpec),
)
# A nested section's key points to its table.
NESTED = {DataConfig: "data", ModelsConfig: "models", Hyper: "train-teacher_train-per_modelmodel",
          GridBlock: "grid-blocks", ResourcesSpec: "resources", SearchSpec: "search"}
# Keys whose names come from a registry, not from the annotation.
REGISTRIES = {(SweepSpec, "recipe"): recipes.available, (DataConfig, "task"): lambda: tuple(tasks.TASKS),
              (GridBlock, "methods"): methods.names, (GridBlock, "recipe"): recipes.available}
# Defaults that depend on the machine (a path beside the checkout), described instead of printed.
MACHINE_DEFAULTS = {(DataConfig, "source"): "required in code; a space may leave it out: the "
                                          "default data ([data.md](data.md))"}
# Each section's introduction: its class's docstring, or (module, paragraphs) where it has none.
INTROS = {SweepSpec: (spec, 2), GridBlock: (grid, None), ResourcesSpec: None}
# A reference in a docstring to a file a clone does not have, and where it now lives.
MOVED = {"DESIGN.md": "[science.md](science.md)"}


def attribute_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring: the string literal right under its annotated line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _fields(cls: type) -> Iterator[tuple[str, Any, Any, list[str], dict[str, Any]]]:
    """(name, annotation, default or ``inspect.Parameter.empty``, constraints, metadata)."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = (f.default if f.default is not dataclasses.MISSING else
                       f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else inspect.Parameter.empty)
            yield f.name, hints[f.name], default, [], dict(f.metadata)
        return
    assert issubclass(cls, BaseModel)
    for name, info in cls.model_fields.items():
        default = (info.get_default(call_default_factory=True) if not info.is_required()
                   else inspect.Parameter.empty)
        yield name, info.annotation, default, _constraints(info.metadata), {}


def _constraints(metadata: list[Any]) -> list[str]:
    words = {"ge": "≥ {}", "gt": "> {}", "le": "≤ {}", "lt": "< {}",
             "min_length": "at least {} item(s)", "max_length": "at most {} item(s)",
             "pattern": "matches `{}`"}
    found = []
    for item in metadata:
        if getattr(item, "min_length", None) == 1:
            found.append("non-empty")
            continue
        for attr, word in words.items():
            value = getattr(item, attr, None)
            if value is not None:
                found.append(word.format(value))
    return found


def type_text(annotation: Any) -> str:
    """A reader's words for an annotation: `int`, `list of str`, `one of a, b`, `int or null`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return " or ".join(type_text(a) for a in rest) + (" or null" if len(rest) < len(args) else "")
    if origin is list:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return f"mapping of {type_text(args[0])} to {type_text(args[1])}"
    if annotation is Any:
        return "any"
    if annotation in NESTED:
        return f"mapping ([below](#{NESTED[annotation]}))"
    if isinstance(annotation, type):
        return annotation.__name__
    raise TypeError(f"schema_doc cannot name the type {annotation!r}; teach type_text it")


def value_text(value: Any) -> str:
    """A default as YAML writes it (a float as PyYAML reads it back: ``5.0e-05``, not ``5e-05``)."""
    if isinstance(value, BaseModel):
        return "see below"
    if dataclasses.is_dataclass(value):
        return "see below"
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return f"`{text.removesuffix('...').strip()}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def section_table(cls: type) -> str:
    docs = attribute_docs(cls)
    rows = ["| key | type | default | what it is |", "| --- | --- | --- | --- |"]
    keyed = cls is Hyper
    if keyed:
        rows = ["| key | type | default | what it is | distributions | keys |",
                "| --- | --- | --- | --- | --- | --- |"]
    for name, annotation, default, constraints, metadata in _fields(cls):
        kind = type_text(annotation)
        registry = REGISTRIES.get((cls, name))
        if registry:
            kind += " (" + ", ".join(f"`{n}`" for n in registry()) + ")"
        if constraints:
            kind += "; " + ", ".join(constraints)
        shown = (MACHINE_DEFAULTS.get((cls, name)) or
                 ("required" if default is inspect.Parameter.empty else value_text(default)))
        cells = [f"`{name}`", kind, shown, docs.get(name, "")]
        if keyed:
            fits = search._fitting(name)
            cells.append(", ".join(f"`{d}`" for d in fits) if fits else "none")
            cells.append(keying(metadata))
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def keying(metadata: dict[str, Any]) -> str:
    """Whether a setting enters a trial's content key, from its field's metadata (trainers/config.py)."""
    if metadata.get("keyed", True) is False:
        return "not keyed"
    if metadata.get("keyed") == "off-default":
        return "keyed off its default"
    return "distillation only" if metadata.get("distils") else "keyed"


def markdown(doc: str) -> str:
    """A docstring as Markdown: single backticks for reST's double ones, moved files linked."""
    doc = doc.replace("``", "`")
    for old, new in MOVED.items():
        doc = doc.replace(old, new)
    return doc


def class_intro(cls: type) -> str:
    """The class's own docstring (not one it inherits), or its module's first paragraphs."""
    if cls in INTROS:
        if INTROS[cls] is None:
            return ""
        module, paragraphs = INTROS[cls]
        return markdown("\n\n".join((inspect.getdoc(module) or "").split("\n\n")[:paragraphs]))
    return markdown(inspect.cleandoc(cls.__dict__.get("__doc__") or ""))


def render() -> str:
    parts = [
        "# Search-space reference",
        "",
        f"Generated from the typed schema by `{COMMAND}`; do not edit it",
        "by hand: `tests/orchestrator/spec/test_schema_doc.py` fails when this file differs from what the",
        "generator prints, so after a change to a schema class, run the command and commit the result.",
        "How the keys work together, with examples: [search-spaces.md](search-spaces.md). An unknown",
        "key at any depth is refused in one line naming the closest known one.",
    ]
    for heading, _anchor, cls in SECTIONS:
        intro = class_intro(cls)
        parts += ["", f"## {heading}", ""] + ([intro, ""] if intro else []) + [section_table(cls)]
    recipe_doc = markdown(inspect.getdoc(recipes) or "").split("\n\n")
    parts += [
        "",
        "## Distributions",
        "",
        markdown(inspect.getdoc(search) or ""),
        "",
        "The `train:` table's *distributions* column says which of "
        + ", ".join(f"`{d}`" for d in search.DISTRIBUTIONS) + " each key takes;",
        "*keys* says whether a key enters a trial's content key (*distillation only*: a distilling",
        "trial's key only; *keyed off its default*: only where it is set to another value; *not keyed*:",
        "it changes no result).",
        "",
        "## Recipes",
        "",
        "Named recipes, in `search_spaces/recipes/` ([recipes.md](recipes.md)): "
        + ", ".join(f"`{r}`" for r in recipes.available()) + ".",
        "",
        recipe_doc[1] if len(recipe_doc) > 1 else recipe_doc[0],
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
