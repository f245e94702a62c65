"""Search-space schema: a YAML file in ``search_spaces/`` validated once into typed objects.

A space is plain data. ``grid`` is a list of blocks; each block is a cross product of its lists,
and the sweep is the union of the blocks (duplicates removed), so a space can say "KD and MetaDistil
for these pairs, warm start only for this one" without a full cross product. ``seeds`` apply to
every block. Every error names the file, the key path and the fix, in one line.

What a space says about training is not defined here: ``train:`` (and each ``teacher_train`` /
``per_model`` override) is a ``trainers.config.Hyper``, ``data:`` a ``DataConfig`` and ``models:``
a ``ModelsConfig``, read straight into those dataclasses, and a grid block's values go through the
config's own ``check_*`` functions, so their defaults, ranges and messages are the trainers' own.
This file holds only what is the sweep's: the grid, seeds, resources, overrides, the
recipes it names (``orchestrator/spec/recipes.py``) and its search (``orchestrator/spec/search.py``:
a value of
``train:``, ``teacher_train:`` or ``per_model`` may be a distribution; those are kept apart from the
plain values, by their place, and drawn per sample by ``train_spec``).
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.paths import PROJECT_ROOT
from orchestrator.spec import recipes
from orchestrator.spec.grid import GridBlock, Strict
from orchestrator.spec.search import Distribution, SearchSpec, draw, split
from trainers import config
from trainers.config import ConfigError, DataConfig, Hyper, ModelsConfig, distillation_only
from trainers.data.source import HUB, OfflineDataError, default_source
from trainers.data.tasks import task_error
from trainers.errors import UserError
from trainers.methods import registry as methods


class SpecError(UserError):
    """The search space is unusable; the message is one line with the file, key and fix."""


class ResourcesSpec(Strict):
    workers_per_trial: int = Field(1, ge=1)
    """Ray Train workers per trial (gloo on CPU, NCCL on GPU)."""
    cpus_per_worker: float = Field(1.0, gt=0)
    """CPUs each worker reserves (fractions allowed); also its torch threads."""
    gpus_per_worker: float = Field(0.0, ge=0)
    """GPUs each worker reserves (fractions allowed)."""
    max_concurrent: int | None = Field(None, ge=1)
    """Trials side by side at most (null: as many as the resources allow)."""
    max_failures: int = Field(2, ge=0)
    """Restarts of a trial's workers from its last checkpoint after a crash."""
    # The CPU kernel path of every worker (trainers/runtime/kernels.py): native = each CPU's fastest,
    # bit-identical on one machine; portable = AVX2 pinned, the same bits on any AVX2 CPU.
    kernels: Literal["native", "portable"] = "native"
    """CPU kernel path of every worker: `native` or `portable` (docs/reproducibility.md)."""


class SweepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """The sweep's name: its MLflow experiment, its report folder `results/store/reports/<name>/`."""
    description: str = ""
    """Free text, shown by the dry run."""
    recipe: str = recipes.DEFAULT
    """A named recipe whose `train:` and `data:` values go under the space's own."""
    seeds: list[int] = Field(min_length=1)
    """Seeds every grid combination trains with; distinct."""
    grid: list[GridBlock] = Field(min_length=1)
    """Blocks, each a cross product of its lists; the sweep is their union."""
    # Read when the space is (``_default_source``): a space without data: still reads METADISTIL_DATA.
    data: DataConfig = Field(default_factory=dict, validate_default=True)
    """The task, its data and its split (`data:` below)."""
    models: ModelsConfig = ModelsConfig()
    """Which build the registry names load (`models:` below)."""
    train: Hyper = Hyper()
    """Hyper-parameters of every trial (`train:` below); a value may be a distribution."""
    teacher_train: dict[str, Any] = Field(default_factory=dict)
    """`train:` keys for the stage-1 teachers' fine-tunes only."""
    # Overrides for the trials that train a given model (as a teacher, a baseline or a distilled
    # student): a tiny preset learning from scratch wants ten times a pretrained model's rate.
    per_model: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """`train:` keys for the trials that train a given model: `{roberta: {lr: 1.0e-3}}`."""
    resources: ResourcesSpec = ResourcesSpec()
    """What each trial reserves (`resources:` below)."""
    search: SearchSpec = Field(SearchSpec(), validate_default=True)  # after data: its metric is the task's
    """How the trials are chosen: the grid, a random or an Optuna search (`search:` below)."""
    # The distributions by place ("train", "teacher_train", "per_model.roberta") and key; the
    # typed sections above hold the plain values only.
    _distributions: dict[str, dict[str, Distribution]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _distributions_apart(cls, raw: Any, handler: ModelWrapValidatorHandler[SweepSpec]) -> SweepSpec:
        """A ``Hyper`` holds one value per key, so the distributions leave ``train:``,
        ``teacher_train:`` and ``per_model`` before those are read, and come back as the spec's."""
        if not isinstance(raw, dict):
            return handler(raw)
        plain, found = dict(raw), {}
        for section in ("train", "teacher_train"):
            plain[section], found[section] = split(section, raw.get(section, {}))
        if isinstance(raw.get("per_model"), dict):
            plain["per_model"] = dict(raw["per_model"])
            for model, values in raw["per_model"].items():
                place = f"per_model.{model}"
                plain["per_model"][model], found[place] = split(place, values)
        spec = handler({k: v for k, v in plain.items() if k in raw})
        spec._distributions = {place: dists for place, dists in found.items() if dists}
        spec._check_search()
        spec._check_unrolled_pilot()
        return spec

    @model_validator(mode="before")
    @classmethod
    def _recipe_under_the_space(cls, raw: Any) -> Any:
        """``recipe: NAME`` puts the recipe's values under the space's own ``train:``/``data:``."""
        if not isinstance(raw, dict) or "recipe" not in raw:
            return raw
        if not isinstance(raw["recipe"], str):
            raise ValueError(f"recipe = {raw['recipe']!r}: name one recipe "
                             f"({', '.join(recipes.available())}); lists go in a grid block")
        recipe = recipes.load(raw["recipe"])
        merged = dict(raw)
        for section in ("train", "data"):
            if recipe[section] or section in raw:
                own = raw.get(section) or {}
                merged[section] = {**recipe[section], **own} if isinstance(own, dict) else own
        return merged

    @field_validator("data", mode="before")
    @classmethod
    def _default_source(cls, value: Any) -> Any:
        """``data:`` without ``source``: the task's folder in ``METADISTIL_DATA``, else the hub
        (``trainers/data/source.py``). A task the config refuses needs no folder: its own error says why."""
        if isinstance(value, dict) and "source" not in value:
            task = value.get("task", "sst2")
            known = isinstance(task, str) and task_error(task) is None
            return {"source": default_source(task) if known else HUB, **value}
        return value

    @field_validator("search")
    @classmethod
    def _metric_of_the_task(cls, search: SearchSpec, info: ValidationInfo) -> SearchSpec:
        """A metric the task logs, by default its main one; no check where ``data`` was refused."""
        return search.for_task(info.data["data"].task) if "data" in info.data else search

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, values: list[int]) -> list[int]:
        if len(set(values)) != len(values):
            raise ValueError("seeds repeat; list each seed once")
        return values

    @field_validator("teacher_train")
    @classmethod
    def _train_overrides(cls, values: dict[str, Any]) -> dict[str, Any]:
        _check_overrides(values)
        return values

    @field_validator("per_model")
    @classmethod
    def _model_overrides(cls, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for model, overrides in values.items():
            try:
                _check_overrides(overrides)
            except ValueError as error:
                raise ValueError(f"{model}: {error}") from None
        return values

    @model_validator(mode="after")
    def _per_model_names_trained_models(self) -> SweepSpec:
        named = {m for b in self.grid for m in b.models}
        for model in self.per_model:
            if model not in named:
                raise ValueError(f"per_model names {model!r}, which no grid block trains; use one of "
                                 f"{', '.join(sorted(named))}")
        return self

    @model_validator(mode="after")
    def _block_recipes_share_the_data(self) -> SweepSpec:
        """Every trial of a sweep shares one data split (its teachers are trained on it): a block's
        recipe may set hyper-parameters, but its data values must be the sweep's already."""
        for index, block in enumerate(self.grid):
            for name in block.recipe:
                for key, value in recipes.load(name)["data"].items():
                    if name != self.recipe and getattr(self.data, key) != value:
                        raise ValueError(
                            f"grid[{index}].recipe {name!r} sets data.{key} = {value!r} but the sweep's "
                            f"data.{key} is {getattr(self.data, key)!r}; set data.{key}: {value!r} "
                            f"(one split for every trial) or recipe: {name} at the top")
                Hyper(**{**dataclasses.asdict(self.train), **recipes.load(name)["train"]})
        return self

    def _check_search(self) -> None:
        """What needs the distributions too: the search block against them, and ASHA's grace period
        and the warm start against the fewest epochs ``train.epochs`` can draw."""
        places = list(self.distributions)
        if places and self.search.algorithm == "grid":
            raise ValueError(f"{places[0]} is a distribution, which the grid cannot run: set "
                             "search: {algorithm: random, num_samples: N}")
        if not places and self.search.algorithm != "grid":
            raise ValueError(f"search.algorithm {self.search.algorithm} has nothing to draw: make a "
                             "value under train: "
                             "a distribution, e.g. lr: {loguniform: [1.0e-5, 1.0e-3]}")
        if self.search.algorithm == "optuna":
            self._check_optuna()
        drawn = self._distributions.get("train", {}).get("epochs")
        epochs = drawn.lowest() if drawn else self.train.epochs
        self.search.check_epochs(epochs, drawn is not None)
        for index, block in enumerate(self.grid):
            for w in block.warmup_epochs:
                try:
                    config.check_warmup_epochs(w, epochs)
                except ConfigError as error:
                    lowest = f" (epochs={epochs}: the lowest draw of train.epochs)" if drawn else ""
                    raise ValueError(f"grid.{index}.warmup_epochs = {w!r}: {error.reason}{lowest}") from None

    def _check_unrolled_pilot(self) -> None:
        """MetaDistil's k-step pilot (``num_meta_batches`` k > 1) runs on one worker per trial: the
        teachers' gradient through k student steps would need an all-reduce autograd can follow.
        The worker refuses it too (``trainers/methods/metadistil.py``), but only once Ray has started."""
        workers = self.resources.workers_per_trial
        trials = [(m, s, r) for b in self.grid if workers > 1 for m in b.methods
                  if "num_meta_batches" in methods.get(m).reads for s in b.students for r in b.recipe]
        for method, student, recipe in trials:
            drawn = self.searched(student, recipe=recipe).get("num_meta_batches")
            k = max(drawn.args) if drawn else self.train_spec(student, recipe=recipe).num_meta_batches
            if k > 1:
                raise ValueError(f"resources.workers_per_trial {workers} with num_meta_batches {k} "
                                 f"({method} student {student!r}): the k-step pilot runs on one worker "
                                 "per trial; set workers_per_trial: 1 or num_meta_batches: 1")

    def _check_optuna(self) -> None:
        """An Optuna study tunes one grid combination against fixed teachers on one seed: a value
        drawn for a teacher would give each suggestion teachers of its own, and a study's
        suggestions on several seeds would be one suggestion each (re-run the best over seeds with
        the report's ``best_space.yaml``)."""
        if len(self.seeds) > 1:
            raise ValueError(f"seeds {self.seeds}: algorithm optuna tunes on one seed; list one, "
                             "then re-run the best configuration over more (the report's best_space.yaml)")
        for block in self.grid:
            for teacher in sorted({t for s in block.teachers for t in s}):
                keys = self.searched_keys(teacher, teacher=True, distils=False)
                if keys:
                    raise ValueError(
                        f"{keys[0]} is a distribution that reaches the teacher {teacher!r}; algorithm "
                        f"optuna tunes against fixed teachers: give teacher_train a plain {keys[0]}")

    def train_spec(self, model: str, *, teacher: bool = False, recipe: str = recipes.DEFAULT,
                   sample: int = 0) -> Hyper:
        """Hyper-parameters of a trial that trains ``model``: ``train`` (the sweep's recipe under the
        space's values), then a block's own ``recipe``, then ``teacher_train`` for a stage-1
        teacher, then ``per_model[model]``; a distribution at one of those places is drawn for
        ``sample``, and a plain value at a later place wins over it as over any value."""
        values: dict[str, Any] = {}
        for place, plain in self._places(model, teacher, recipe):
            values.update(plain)
            values.update({key: draw(dist, self.search.seed, sample, f"{place}.{key}")
                           for key, dist in self._distributions.get(place, {}).items()})
        return dataclasses.replace(self.train, **values)

    def searched(self, model: str, *, teacher: bool = False, recipe: str = recipes.DEFAULT,
                 distils: bool = True) -> dict[str, Distribution]:
        """The distribution ``train_spec`` draws each key from for such a trial, by key, less the
        keys a fine-tune does not read (``distils`` false): their draws leave its key as it is."""
        found: dict[str, Distribution] = {}
        for place, plain in self._places(model, teacher, recipe):
            found = {k: d for k, d in found.items() if k not in plain}
            found.update(self._distributions.get(place, {}))
        return {k: found[k] for k in sorted(found) if distils or k not in distillation_only()}

    def searched_keys(self, model: str, *, teacher: bool = False, recipe: str = recipes.DEFAULT,
                      distils: bool = True) -> list[str]:
        return list(self.searched(model, teacher=teacher, recipe=recipe, distils=distils))

    @property
    def distributions(self) -> dict[str, Distribution]:
        """Every distribution of the space by its place and key (``per_model.roberta.lr``)."""
        return {f"{place}.{key}": dist for place, dists in self._distributions.items()
                for key, dist in dists.items()}

    def sample_values(self, sample: int) -> dict[str, Any]:
        """Every distribution's draw for ``sample``, by place and key."""
        return {where: draw(dist, self.search.seed, sample, where)
                for where, dist in self.distributions.items()}

    def _places(self, model: str, teacher: bool, recipe: str) -> list[tuple[str, dict[str, Any]]]:
        """Where a trial's values come from, in order, with their plain values."""
        places = [("train", {}), ("recipe", recipes.load(recipe)["train"] if recipe != self.recipe else {})]
        if teacher:
            places.append(("teacher_train", self.teacher_train))
        return [*places, (f"per_model.{model}", self.per_model.get(model, {}))]

    def trial_recipe(self, block_recipe: str) -> str:
        """The recipe a trial's tag names: its block's, or else the sweep's."""
        return self.recipe if block_recipe == recipes.DEFAULT else block_recipe


def _check_overrides(values: dict[str, Any]) -> None:
    """Keys of ``train`` with values ``train`` accepts."""
    for key in values:
        if key not in _field_names(Hyper):
            raise ValueError(f"unknown key '{key}'{_did_you_mean(('train', key))}")
    try:
        Hyper(**values)
    except ConfigError as error:
        raise ValueError(f"{error.key} = {error.value!r}: {error.reason}" if error.key
                         else str(error)) from None


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """For an unknown key, the closest allowed key at that level of the schema."""
    sections = {"data": DataConfig, "models": ModelsConfig, "train": Hyper,
                "teacher_train": Hyper, "resources": ResourcesSpec, "grid": GridBlock,
                "search": SearchSpec}
    names = _field_names(sections.get(loc[0], SweepSpec) if len(loc) > 1 else SweepSpec)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(names)}"


def _field_names(schema: type) -> list[str]:
    if dataclasses.is_dataclass(schema):
        return [f.name for f in dataclasses.fields(schema)]
    return list(schema.model_fields)


def parse_spec(raw: Any, source: str) -> SweepSpec:
    """Validate a loaded YAML document; raise :class:`SpecError` naming ``source`` and the key."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping of keys (name, seeds, grid, ...), "
                        f"got {type(raw).__name__}")
    try:
        return SweepSpec(**raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, OfflineDataError):  # the environment's mistake, not the file's
            raise cause from None
        if isinstance(cause, ConfigError) and cause.key:  # a dataclass's __post_init__, for_task
            raise SpecError(f"{source}: {where}.{cause.key} = {cause.value!r}: {cause.reason}") from None
        if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            raise SpecError(f"{source}: unknown key '{where}'{_did_you_mean(first['loc'])}") from None
        if first["type"] == "missing":
            raise SpecError(f"{source}: missing key '{where}'") from None
        value = first.get("input")
        shown = "" if isinstance(value, (dict, list)) and len(str(value)) > 60 else f" = {value!r}"
        if first["type"] in ("dict_type", "dataclass_type", "model_type"):  # pydantic names our classes
            raise SpecError(f"{source}: {where}{shown}: expected a mapping of keys; write them as "
                            f"key: value lines under it, or remove {where}") from None
        message = first["msg"].removeprefix("Value error, ")
        if not where:  # a check across sections: its message names the keys
            raise SpecError(f"{source}: {message}") from None
        raise SpecError(f"{source}: {where}{shown}: {message}") from None


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a search-space file (safe YAML: no tags, no code)."""
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in (PROJECT_ROOT / "search_spaces").glob("*.yaml")))
        raise SpecError(f"{path}: search space not found (shipped: {available})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, OSError) as error:
        raise SpecError(f"{path}: cannot read the file ({type(error).__name__}); it must be UTF-8 "
                        "text you can read") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise SpecError(f"{path}{line}: YAML syntax error: {problem}") from None
    return parse_spec(raw, str(path))
