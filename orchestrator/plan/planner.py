"""The planner: a validated space → trials with content keys, grouped into stages.

The plan is a graph of trials, each trial's teachers its edges, laid out in topological layers: stage 1
fine-tunes every distinct teacher and every baseline student once; a distillation runs one stage
after its latest teacher's (stage 2 from the fine-tuned teachers; a teacher assistant's student,
Mirzadeh et al., AAAI 2020, one stage after its assistant). A stage starts when the one before it has
ended: a trial may wait on a trial of its stage's predecessor that it does not need (the dry run
prints what the layers cost against the critical path).

A trial's content key hashes everything that determines its result (method, models, data split,
hyper-parameters, seed, and its teachers' keys), so the same training is the same key in any sweep:
a teacher is trained once per storage, and a finished trial is never redone.

The k-th occurrence of a model in a teacher set (``[bert, bert]``) is a separately fine-tuned model
with seed ``seed + 1000·k``: two copies of one teacher would teach nothing new.

A random search (``orchestrator/spec/search.py``) plans each sample × every seed × every grid
combination; a trial is a sample's (``__s<k>`` in its name, ``sample`` and ``searched`` tags) when
a drawn value reaches its config or its teachers'. Draws that do not (a distillation setting in a
fine-tune) leave the trial as it was, so every sample shares it; two samples that draw the same
values are one trial, as are any two trials with one content key.

An Optuna search plans the grid once: a trial a drawn value reaches is not run but is its
combination's study (``orchestrator/plan/studies.py``), whose recorded suggestions are planned as
trials (``suggested``); Tune asks the study for the rest while the stage runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.plan.studies import Record, Study, Suggestion, group_of
from orchestrator.spec import recipes
from orchestrator.spec.search import Distribution
from orchestrator.spec.space import SweepSpec
from orchestrator.tracking.names import assistants_tag, cohort_tag, run_name, teachers_tag
from trainers.config import ConfigError, Hyper, TrainConfig, distillation_only, unkeyed, unkeyed_at_default
from trainers.methods import registry as methods
from trainers.models.refs import Resolved
from trainers.record.layout import StorageLayout

TEACHER_SEED_STRIDE = 1000


@dataclass(frozen=True)
class PlannedTrial:
    """One trial. ``config`` holds the models as workers load them (resolved sources);
    ``student`` and ``teachers`` are their short labels, for run names, tags and reports."""

    key: str
    name: str
    stage: int
    config: TrainConfig
    student: str
    teachers: tuple[str, ...] = ()
    teacher_keys: tuple[str, ...] = ()
    recipe: str = recipes.DEFAULT
    # A search's sample index and its drawn values (full precision) by key, a teacher's as
    # ``<teacher>.<key>``; None and empty outside a search or where no draw reaches the trial.
    sample: int | None = None
    searched: tuple[tuple[str, Any], ...] = ()
    # A teacher-assistant chain's models between ``teachers`` and ``student``, in order.
    assistants: tuple[str, ...] = ()
    # A cohort's members' labels, in order, and this trial's place in it (``config.member``); every
    # member but the first is trained by the first's trial, whose key is its ``lead``.
    cohort: tuple[str, ...] = ()
    lead: str = ""

    @property
    def tags(self) -> dict[str, str]:
        cfg = self.config
        tags = {"stage": str(self.stage), "method": cfg.method, "teachers": teachers_tag(self.teachers),
                "student": self.student, "size": cfg.size, "noise_p": f"{cfg.noise_p:g}",
                "noise_teachers": str(cfg.noise_teachers).lower(),
                "warmup_epochs": str(cfg.warmup_epochs),
                "meta_every": str(methods.get(cfg.method).variant(cfg)),
                "recipe": self.recipe, "seed": str(cfg.seed), "trial_key": self.key}
        if cfg.data.task != "sst2":  # an SST-2 trial's tags stay as they were (the report's default)
            tags["task"] = cfg.data.task
        if self.assistants:  # a direct trial's tags stay as they were
            tags["assistants"] = assistants_tag(self.assistants)
        if self.cohort:
            tags.update(cohort=cohort_tag(self.cohort), member=str(cfg.member + 1))
        if self.sample is not None:
            tags.update(sample=str(self.sample),
                        searched=json.dumps(dict(self.searched), separators=(",", ":")))
        return tags


@dataclass(frozen=True)
class Hop:
    """One distillation of a block's combination: its method, the block's teachers' labels, the
    chain's models so far (``via``), and the settings of the trial; a chain's inner hops are plain."""

    method: str
    labels: tuple[str, ...]
    recipe: str
    seed: int
    sample: int
    weights: list[float] | None
    via: tuple[str, ...] = ()
    noise_p: float = 0.0
    shared: bool = False
    warm: int = 0


@dataclass(frozen=True)
class Keying:
    """What a content key hashes besides the config (``content_key``'s other arguments)."""

    data_fingerprint: str
    world_size: int = 1
    model_fingerprints: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    stages: dict[int, list[PlannedTrial]]
    skipped: list[str] = field(default_factory=list)
    # A random search's draws by sample index, every distribution by its place (``train.lr``).
    samples: dict[int, dict[str, Any]] = field(default_factory=dict)
    # An Optuna search's studies (their recorded suggestions are in ``stages`` already).
    studies: list[Study] = field(default_factory=list)
    keying: Keying = Keying("")

    @property
    def trials(self) -> list[PlannedTrial]:
        return [t for stage in sorted(self.stages) for t in self.stages[stage]]


def content_key(config: TrainConfig, data_fingerprint: str, teacher_keys: tuple[str, ...],
                world_size: int = 1, model_fingerprints: Mapping[str, str] | None = None) -> str:
    """Hash of everything that determines a trial's result, the number of workers included (it
    sets the effective batch), the data by its fingerprint, the teachers by their keys and each
    model by its fingerprint (a folder: its path and a checksum of its weights, so new weights
    train anew; ``model_refs.Resolved``). Settings that change no result are left out, and so are
    those only distillation reads from a fine-tune's key (``trainers.config``'s field metadata)."""
    fields = config.to_dict()
    for key in unkeyed() + unkeyed_at_default(config) + (distillation_only() if not config.distils else ()):
        fields.pop(key)
    prints = model_fingerprints or {}
    fields["student"] = prints.get(config.student, config.student)
    fields["teachers"] = [prints.get(t, t) for t in config.teachers]
    fields["data"] = {"fingerprint": data_fingerprint, "max_length": config.data.max_length}
    fields["teacher_keys"] = list(teacher_keys)
    fields["world_size"] = world_size
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_plan(spec: SweepSpec, *, data_fingerprint: str, storage: Path,
               models: Mapping[str, Resolved]) -> Plan:
    """``models``: every model reference of the space, resolved (``preflight.resolve_models``)."""
    workers = spec.resources.workers_per_trial
    layout = StorageLayout(storage)
    stages: dict[int, dict[str, PlannedTrial]] = {1: {}, 2: {}}
    skipped: list[str] = []
    prints = {m.source: m.fingerprint for m in models.values()}
    spaces: dict[str, dict[str, Distribution]] = {}  # a drawn trial's distributions, by its key
    baseline = methods.baseline().name  # trains teachers and baselines

    def finetune(model: str, seed: int, sample: int, *, teacher: bool = False,
                 recipe: str = recipes.DEFAULT) -> PlannedTrial:
        ref = models[model]
        config = _config(spec, spec.train_spec(model, teacher=teacher, recipe=recipe, sample=sample),
                         method=baseline, student=ref.source, seed=seed)
        space = spec.searched(model, teacher=teacher, recipe=recipe, distils=False)
        searched = {k: getattr(config, k) for k in space}
        drawn = sample if searched else None
        key = content_key(config, data_fingerprint, (), workers, prints)
        name = run_name(baseline, ref.label, (), 0.0, 0, seed, recipe=_suffix(spec, recipe), sample=drawn)
        trial = PlannedTrial(key, name, 1, config, ref.label, recipe=spec.trial_recipe(recipe),
                             sample=drawn, searched=tuple(searched.items()))
        spaces[key] = space
        return stages[1].setdefault(key, trial)

    def distil(hop: Hop, model: str, teachers: list[PlannedTrial]) -> PlannedTrial:
        """``model`` distilled from ``teachers`` (fine-tunes, or the previous hop of a chain): one
        stage after its latest teacher's."""
        ref, keys = models[model], tuple(t.key for t in teachers)
        config = _config(
            spec, spec.train_spec(model, recipe=hop.recipe, sample=hop.sample), method=hop.method,
            student=ref.source, seed=hop.seed, teachers=tuple(t.config.student for t in teachers),
            noise_p=hop.noise_p, noise_teachers=hop.shared, warmup_epochs=hop.warm,
            teacher_weights=hop.weights, teacher_dirs=tuple(str(layout.weights_dir(k)) for k in keys))
        space = spec.searched(model, recipe=hop.recipe)
        own = {k: getattr(config, k) for k in space}
        from_teachers = {f"{t.student}.{k}": v for t in teachers for k, v in t.searched}
        drawn = hop.sample if own or from_teachers else None
        key = content_key(config, data_fingerprint, keys, workers, prints)
        spaces[key] = space
        name = run_name(hop.method, ref.label, hop.labels, hop.noise_p, hop.warm, hop.seed,
                        noise_teachers=hop.shared, meta_every=methods.get(hop.method).variant(config),
                        recipe=_suffix(spec, hop.recipe), sample=drawn, via=hop.via)
        stage = 1 + max(t.stage for t in teachers)
        return stages.setdefault(stage, {}).setdefault(key, PlannedTrial(
            key, name, stage, config, ref.label, hop.labels, keys, spec.trial_recipe(hop.recipe),
            drawn, tuple({**own, **from_teachers}.items()), hop.via))

    def cohort(method: str, members: list[str], seed: int, sample: int, recipe: str) -> None:
        """A cohort trained in one trial: its first member's, whose config every member's shares
        but for its place; each member a trial of its own (key, name, folder, run)."""
        lead_config = _config(spec, spec.train_spec(members[0], recipe=recipe, sample=sample),
                              method=method, student=models[members[0]].source, seed=seed,
                              cohort=tuple(models[m].source for m in members))
        labels = tuple(models[m].label for m in members)
        space = spec.searched(members[0], recipe=recipe, distils=False)
        searched = {k: getattr(lead_config, k) for k in space}
        drawn = sample if searched else None
        lead = ""
        for k, model in enumerate(members):
            config = dataclasses.replace(lead_config, student=models[model].source, member=k)
            key = content_key(config, data_fingerprint, (), workers, prints)
            name = run_name(method, labels[k], (), 0.0, 0, seed, recipe=_suffix(spec, recipe),
                            sample=drawn, cohort=labels, member=k)
            spaces[key] = space
            stages[1].setdefault(key, PlannedTrial(
                key, name, 1, config, labels[k], recipe=spec.trial_recipe(recipe), sample=drawn,
                searched=tuple(searched.items()), cohort=labels, lead=lead))
            lead = lead or key

    optuna = spec.search.algorithm == "optuna"
    for block_index, block in enumerate(spec.grid):
        for sample, seed in itertools.product(range(1 if optuna else spec.search.num_samples), spec.seeds):
            for method in block.methods:
                if method == baseline:
                    if any(p > 0 for p in block.noise_p) or any(w > 0 for w in block.warmup_epochs):
                        skipped.append(f"grid[{block_index}]: finetune × noise/warm start skipped "
                                       "(they apply to distillation only)")
                    for student in block.students:
                        for recipe in block.recipe:
                            finetune(student, seed, sample, recipe=recipe)
                    continue
                if methods.get(method).cohort:
                    for student, peers, recipe in itertools.product(block.students, block.peers,
                                                                     block.recipe):
                        cohort(method, [student, *peers], seed, sample, recipe)
                    continue
                if True in block.noise_teachers and 0.0 in block.noise_p:
                    skipped.append(f"grid[{block_index}]: noise_teachers true × noise_p 0 skipped "
                                   "(no noise to share with the teachers)")
                for teacher_set in block.teachers:
                    teachers = [finetune(name, seed + TEACHER_SEED_STRIDE * teacher_set[:i].count(name),
                                         sample, teacher=True)
                                for i, name in enumerate(teacher_set)]
                    labels = tuple(models[t].label for t in teacher_set)
                    for chain, student, recipe, noise_p, shared, warm in itertools.product(
                            block.assistants, block.students, block.recipe, block.noise_p,
                            block.noise_teachers, block.warmup_epochs):
                        if shared and noise_p == 0:
                            continue
                        hop = Hop(method, labels, recipe, seed, sample, block.teacher_weights)
                        sources: list[PlannedTrial] = teachers
                        for assistant in chain:  # plain hops: the block's variations are the student's
                            sources = [distil(hop, assistant, sources)]
                            hop = dataclasses.replace(hop, via=(*hop.via, models[assistant].label),
                                                      weights=None)
                        distil(dataclasses.replace(hop, noise_p=noise_p, shared=shared, warm=warm),
                               student, sources)
    keying = Keying(data_fingerprint, workers, prints)
    studies = _studies(spec, stages, spaces, layout, keying) if optuna else []
    samples = range(spec.search.num_samples) if spec.search.algorithm == "random" else ()
    searching = {study.template.stage for study in studies}  # a stage may start with no trial
    plan = Plan({stage: list(trials.values()) for stage, trials in stages.items()
                 if trials or stage in searching},
                sorted(set(skipped)), {k: spec.sample_values(k) for k in samples}, studies, keying)
    names = [t.name for t in plan.trials]
    for name in names:
        if names.count(name) > 1:  # e.g. two teacher_weights for one teacher set, or a teacher
            raise ConfigError(      # trained with teacher_train and listed as a student too
                f"two different trials are both named {name!r}; their settings differ only in "
                "teacher_weights or teacher_train: split them into two sweeps (--name)")
    return plan


def suggested(template: PlannedTrial, suggestion: Suggestion, keying: Keying) -> PlannedTrial:
    """The trial of a study's suggestion: its template with the suggested values (validated by
    the config's own checks), a content key of its own, and the sample in its name and tags."""
    config = dataclasses.replace(template.config, **suggestion.values)
    key = content_key(config, keying.data_fingerprint, template.teacher_keys, keying.world_size,
                      keying.model_fingerprints)
    parts = template.name.split("__")
    parts[-2] = f"s{suggestion.sample}"  # the template's "s0", before "seed<n>"
    return dataclasses.replace(template, key=key, name="__".join(parts), config=config,
                               sample=suggestion.sample, searched=tuple(suggestion.values.items()))


def _studies(spec: SweepSpec, stages: dict[int, dict[str, PlannedTrial]],
             spaces: dict[str, dict[str, Distribution]], layout: StorageLayout,
             keying: Keying) -> list[Study]:
    """Take each drawn trial out of ``stages`` as a study's template, and put its recorded
    suggestions (the first ``num_samples``) in as trials."""
    record = Record.read(layout, spec.name)
    studies = []
    for trials in stages.values():
        for template in [t for t in trials.values() if t.sample is not None]:
            del trials[template.key]
            space = spaces[template.key]
            group = group_of(template.tags, space, spec.search)
            made = tuple(record.studies.get(group, [])[:spec.search.num_samples])
            studies.append(Study(group, template, space, made))
            for suggestion in made:
                trial = suggested(template, suggestion, keying)
                trials.setdefault(trial.key, trial)
    return studies


def _suffix(spec: SweepSpec, recipe: str) -> str:
    """A block's recipe in its run names, where it is not the sweep's own."""
    return "" if spec.trial_recipe(recipe) == spec.recipe else recipe


def _config(spec: SweepSpec, hyper: Hyper, **fields) -> TrainConfig:
    weights = fields.pop("teacher_weights", None)
    return TrainConfig(data=spec.data, teacher_weights=tuple(weights) if weights else None,
                       **dataclasses.asdict(spec.models), **dataclasses.asdict(hyper), **fields)
