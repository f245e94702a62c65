"""Re-run a search's best configurations over more seeds: space files the sweep runs as they are,
``python -m orchestrator.sweep --space results/<sweep>/best_space.yaml``.

The space a search ran is found from the sweep run's ``command`` tag (its ``--space``, relative to
the project; the default space where it names none), else as ``search_spaces/<space tag>.yaml``.
It must still draw, for each sample, the values the runs recorded (their ``searched`` tag): a
space edited since the sweep would fix other values than those that won, so then nothing is
written and the report says why.

A file is that space with every distribution replaced by one sample's draw at the same place
(``train``, ``teacher_train``, ``per_model.<model>``). The planner merges plain values at those
places in the same order as draws, so every trial of that sample, its teachers included, is
planned again exactly, at full precision; ``seeds`` become 0–4, ``search:`` goes, data, models,
resources and recipes stay. The schema holds one value per key and place for a whole sweep (a
grid block names a recipe, never values of its own), hence:

- every configuration's best is one sample (teachers aside: they are trained at the sample of
  the students they teach): one file, ``best_space.yaml``, the whole grid, named ``<sweep>-best``;
- else one file per configuration, ``best_<run name>.yaml``, whose grid is the one block that
  produces it, named ``<sweep>-best-<run name>``: a sweep of its own, so that teachers trained at
  two samples never meet in one table.

An Optuna search's sample k is a different suggestion in each configuration (one study each), so
it always writes one file per configuration, with the values the best run's ``searched`` tag holds
(its space must still search each of those keys).

Paths relative to the space file (``data.source``, ``models.vocab_file``, model folders) are
rewritten relative to the report folder.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator import paths
from orchestrator.report.labels import SweepNames
from orchestrator.report.reader import GroupKey, SweepData, TrialRun, is_baseline
from orchestrator.report.search import Candidate, Ranking
from orchestrator.spec.recipes import DEFAULT
from orchestrator.spec.space import SpecError, SweepSpec, parse_spec
from orchestrator.tracking import names as tracking
from trainers.models.refs import ModelError, ModelRef

BEST_SEEDS = [0, 1, 2, 3, 4]
ONE_FILE = "best_space.yaml"


@dataclass(frozen=True)
class SweepSpace:
    """The space file a sweep ran: its YAML as written and as validated."""

    path: Path
    raw: dict[str, Any]
    spec: SweepSpec


@dataclass(frozen=True)
class BestSpaces:
    """The files written, each with the configuration it re-runs (``None``: all of them) and the
    sample whose values it fixes (``None``: no draw reaches that configuration); ``missing``: the
    configurations that got no file, and why."""

    files: tuple[tuple[GroupKey | None, int | None, Path], ...]
    missing: tuple[str, ...] = ()


def sweep_space(data: SweepData) -> tuple[SweepSpace | None, str]:
    """The space file the sweep ran, found and checked against its runs; or ``None`` and why not."""
    space, why_not = find_space(data)
    why_not = why_not or check_draws(space, (*data.runs, *data.stopped))
    return (None, why_not) if why_not else (space, "")


def find_space(data: SweepData) -> tuple[SweepSpace | None, str]:
    """The space file the sweep ran, or ``None`` and why not."""
    command = data.tags.get("command")
    if command:
        words = shlex.split(command)
        given = next((w.split("=", 1)[1] for w in words if w.startswith("--space=")), None)
        if "--space" in words[:-1]:
            given = words[words.index("--space") + 1]
        path = paths.PROJECT_ROOT / given if given else paths.DEFAULT_SPACE  # Path / absolute = absolute
    elif data.tags.get("space"):
        path = paths.PROJECT_ROOT / "search_spaces" / f"{data.tags['space']}.yaml"
    else:
        return None, "the sweep run records no command and no space"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return SweepSpace(path, raw, parse_spec(raw, str(path))), ""
    except OSError:
        return None, f"its space file {path} is not there"
    except (yaml.YAMLError, SpecError) as error:
        return None, f"its space file {path} no longer reads ({str(error).splitlines()[0]})"


def check_draws(space: SweepSpace, runs: Iterable[TrialRun]) -> str:
    """"" when the space draws, for every run's sample, each value its ``searched`` tag holds (a
    teacher's ``bert.lr`` is a draw of ``lr`` somewhere); else what differs."""
    draws: dict[int, dict[str, Any]] = {}
    searched = {place.rsplit(".", 1)[-1] for place in space.spec.distributions}
    for run in runs:
        if run.sample is None:
            continue
        if space.spec.search.algorithm == "optuna":
            lost = sorted(k for k, _ in run.searched if k not in searched)
            if lost:
                return (f"{shown(space.path)} no longer searches {lost[0]} (run {run.run_id}): it "
                        "changed since the sweep")
            continue
        drawn = draws.setdefault(run.sample, space.spec.sample_values(run.sample))
        for key, value in run.searched:
            name = key.rsplit(".", 1)[-1]
            if not any(place.rsplit(".", 1)[-1] == name and draw == value for place, draw in drawn.items()):
                return (f"{shown(space.path)} no longer draws {key} = {value!r} for sample {run.sample} "
                        f"(run {run.run_id}): it changed since the sweep")
    return ""


def write_best_spaces(space: SweepSpace, ranking: Ranking, names: SweepNames, sweep: str,
                      out_dir: Path) -> BestSpaces:
    """The rule of this module: one file when one sample is every configuration's best, else one
    file per configuration (the teachers' fine-tunes come with the students they teach)."""
    # A teacher's fine-tune is trained again by the configurations it teaches, at their sample.
    best = {key: c[0] for key, c in ranking.ranked.items()
            if not (is_baseline(key.method) and key.student in names.teachers)}
    samples = sorted({c.sample for c in best.values() if c.sample is not None})
    optuna = space.spec.search.algorithm == "optuna"
    if len(samples) <= 1 and not optuna:
        sample = samples[0] if samples else 0
        path = out_dir / ONE_FILE
        _write(path, _document(space, space.spec.sample_values(sample), sample, sweep, f"{sweep}-best",
                               space.raw["grid"], out_dir),
               _header(space, sweep, ranking, path, f"sample {sample}, every configuration's best"))
        return BestSpaces(((None, sample, path),))
    files: list[tuple[GroupKey | None, int | None, Path]] = []
    missing: list[str] = []
    for key, candidate in best.items():
        block = _block(space, key)
        if block is None:  # e.g. a folder label made distinct with "-2": see _label
            missing.append(f"no grid block of {shown(space.path)} produces {key.method} "
                           f"{'+'.join(key.teachers)}→{key.student}, so it has no file")
            continue
        stem = _stem(key, space.spec)
        path = out_dir / f"best_{stem}.yaml"
        sample = 0 if candidate.sample is None else candidate.sample  # no draw reaches it: any sample
        name = f"{sweep}-best-{re.sub(r'[^A-Za-z0-9_.-]', '-', stem)}"
        drawn = _suggested(space, candidate) if optuna else space.spec.sample_values(sample)
        _write(path, _document(space, drawn, sample, sweep, name, [block], out_dir),
               _header(space, sweep, ranking, path, _why(candidate)))
        files.append((key, candidate.sample, path))
    return BestSpaces(tuple(files), tuple(missing))


def _suggested(space: SweepSpace, candidate: Candidate) -> dict[str, Any]:
    """An Optuna candidate's values at every place of the space that searches their key; a place
    whose key it did not search (it reaches no trial of this configuration) keeps its lowest value."""
    values = candidate.searched
    return {place: values.get(place.rsplit(".", 1)[-1], dist.lowest())
            for place, dist in space.spec.distributions.items()}


def _document(space: SweepSpace, drawn: dict[str, Any], sample: int, sweep: str, name: str,
              grid: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """The space with the ``drawn`` values (by place) of ``sample``, ``grid`` as given, more seeds,
    no search."""

    def fixed(place: str, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        return {k: drawn[f"{place}.{k}"] if isinstance(v, dict) else v for k, v in values.items()}

    doc = {"name": name, "description": f"{sweep}'s best (sample {sample}) over seeds {BEST_SEEDS[0]}-"
                                        f"{BEST_SEEDS[-1]}: {space.spec.description or space.spec.name}",
           **{key: value for key, value in space.raw.items() if key not in ("name", "description", "search")}}
    doc.update(seeds=BEST_SEEDS, grid=grid)
    for section in ("train", "teacher_train"):
        if section in doc:
            doc[section] = fixed(section, doc[section])
    trained = {m for block in grid for m in [*block["students"], *(t for s in block.get("teachers", [])
                                                                     for t in s),
                                             *(a for c in block.get("assistants", []) for a in c)]}
    if isinstance(doc.get("per_model"), dict):  # the schema refuses a model no block trains
        doc["per_model"] = {model: fixed(f"per_model.{model}", values)
                            for model, values in doc["per_model"].items() if model in trained}
    return _relocated(doc, space.path.parent, out_dir)


def _block(space: SweepSpace, key: GroupKey) -> dict[str, Any] | None:
    """The grid block that produces exactly ``key``: the first block that does, cut down to it,
    its teacher weights kept."""
    for raw, block in zip(space.raw["grid"], space.spec.grid):
        students = [s for s in block.students if _label(s) == key.student]
        recipes = [r for r in block.recipe if space.spec.trial_recipe(r) == key.recipe]
        if key.method not in block.methods or not students or not recipes:
            continue
        out: dict[str, Any] = {"methods": [key.method], "students": students[:1]}
        if not is_baseline(key.method):
            sets = [s for s in block.teachers if tuple(map(_label, s)) == key.teachers]
            chains = [c for c in block.assistants if tuple(map(_label, c)) == key.assistants]
            if (not sets or not chains or key.noise_p not in block.noise_p
                    or key.warmup_epochs not in block.warmup_epochs
                    or (key.noise_p and key.noise_teachers not in block.noise_teachers)):
                continue
            out["teachers"] = sets[:1]
            if key.assistants:
                out["assistants"] = chains[:1]
            if raw.get("teacher_weights") is not None:
                out["teacher_weights"] = raw["teacher_weights"]
            if key.noise_p:
                out.update(noise_p=[key.noise_p], noise_teachers=[key.noise_teachers])
            if key.warmup_epochs:
                out["warmup_epochs"] = [key.warmup_epochs]
        if recipes[0] != DEFAULT:
            out["recipe"] = recipes[:1]
        return out
    return None


def _label(written: str) -> str:
    """A model's label as the sweep tags it (``model_refs.resolve``) without resolving it (no hub
    probe in a report): a registry name or cut as written, a folder or hub id by its last part."""
    ref = ModelRef.parse(written)
    return ref.with_base(Path(ref.base.rstrip("/")).name or ref.base)


def _stem(key: GroupKey, spec: SweepSpec) -> str:
    """The configuration's run name without its seed: ``distilbert_from_bert__kd``."""
    recipe = "" if key.recipe == spec.recipe else key.recipe
    return tracking.run_name(key.method, key.student, key.teachers, key.noise_p, key.warmup_epochs, 0,
                             noise_teachers=key.noise_teachers, meta_every=key.meta_every,
                             recipe=recipe, via=key.assistants).removesuffix("__seed0")


def _relocated(doc: dict[str, Any], old: Path, new: Path) -> dict[str, Any]:
    """Paths the space wrote relative to its own folder, relative to ``new`` instead."""
    def path(value: Any) -> Any:
        if not isinstance(value, str) or not value or value == "hub" or Path(value).is_absolute():
            return value
        return os.path.relpath((old / value).resolve(), new.resolve())

    def model(written: str) -> str:
        try:
            ref = ModelRef.parse(written)
        except ModelError:
            return written
        return ref.with_base(path(ref.base)) if (old / ref.base).is_dir() else written

    doc = dict(doc)
    for section, key in (("data", "source"), ("models", "vocab_file")):
        if isinstance(doc.get(section), dict) and key in doc[section]:
            doc[section] = {**doc[section], key: path(doc[section][key])}
    doc["grid"] = [{**block, "students": [model(s) for s in block["students"]],
                    **({"teachers": [[model(t) for t in s] for s in block["teachers"]]}
                       if "teachers" in block else {})} for block in doc["grid"]]
    if isinstance(doc.get("per_model"), dict):
        doc["per_model"] = {model(m): values for m, values in doc["per_model"].items()}
    return doc


def _why(candidate: Candidate) -> str:
    if candidate.sample is None:
        return "no draw reaches this configuration: it runs as it did"
    return f"sample {candidate.sample}, the best of this configuration"


def _header(space: SweepSpace, sweep: str, ranking: Ranking, path: Path, what: str) -> str:
    lines = [f"Generated by `python -m orchestrator.report --sweep {sweep}` from its "
             f"{space.spec.search.algorithm} search, "
             f"{shown(space.path)}:",
             f"{what} by {ranking.objective.describe(source=False)}.",
             "Every drawn value is fixed at full precision; more seeds; no search.",
             f"Run: python -m orchestrator.sweep --space {shown(path)}"]
    return "".join(f"# {line}\n" for line in lines)


class _Dumper(yaml.SafeDumper):
    """Lists of values in flow style (``seeds: [0, 1]``, ``teachers: [[bert]]``), as the shipped
    spaces write them; mappings, and the grid's list of them, as blocks."""


_Dumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=not any(isinstance(item, dict) for item in data)))


def _write(path: Path, doc: dict[str, Any], header: str) -> None:
    # PyYAML writes a float as its repr: every digit of a draw survives the round trip.
    path.write_text(header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                                       width=110), encoding="utf-8")


def shown(path: Path) -> str:
    """A path as a command from the project's folder names it."""
    resolved = path.resolve()
    return str(resolved.relative_to(paths.PROJECT_ROOT)) if resolved.is_relative_to(
        paths.PROJECT_ROOT) else str(resolved)
