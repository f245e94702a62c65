"""A grid block of a search space: a cross product of lists, whose every combination is a trial.

``methods`` are names of the methods' registry (``trainers/methods/registry.py``); ``students`` and each
teacher set name models (registry names, hub ids, folders, ``@k`` layer cuts, ``%p`` pruning). A
student may be its own teacher's model: a born-again student (Furlanello et al., ICML 2018) is
distilled from the fine-tuned teacher, a trial of its own.

``assistants`` (Mirzadeh et al., AAAI 2020, "Improved Knowledge Distillation via Teacher
Assistant") lists chains of models between the teachers and the student: ``[[minilm@4]]`` distils
the teachers into MiniLM@4, then MiniLM@4 into the student, with the block's method at each hop
(a MetaDistil assistant keeps learning from its own student, as any MetaDistil teacher does). The
empty chain ``[]`` (the default) is direct distillation; list both to compare them. The hops
before the student's are plain distillations (no noise, no warm start): the block's noise and warm
start vary the student's hop alone, so a chain's rows differ from its direct rows in the chain only.

``peers`` (a cohort method's: deep mutual learning, Zhang et al., CVPR 2018) lists the models each
student trains with, in one trial: ``students: [minilm@2], peers: [[minilm@2]]`` is a cohort of two
MiniLM@2, each member then a model of its own. A cohort method takes no teachers or assistants, and
shares no block with a method that trains one student (the block's lists would not apply to both).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.spec import recipes
from trainers import config
from trainers.methods import registry as methods


def _method_name(name: str) -> str:
    """A name of the methods' registry (``trainers/methods/registry.py``)."""
    reason = methods.check_name(name)
    if reason:
        raise ValueError(reason)
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GridBlock(Strict):
    methods: list[Annotated[str, AfterValidator(_method_name)]] = Field(min_length=1)
    """Methods of the registry (`trainers/methods/registry.py`)."""
    students: list[str] = Field(min_length=1)
    """The models trained: registry names, hub ids, folders, `@k` layer cuts, `%p` pruning."""
    teachers: list[list[str]] = Field(default_factory=list)
    """Teacher sets, each a list of models; a distilling method needs one."""
    assistants: list[list[str]] = Field(default_factory=lambda: [[]], min_length=1)
    """Teacher-assistant chains between teachers and student; `[]` is direct."""
    peers: list[list[str]] = Field(default_factory=lambda: [[]], min_length=1)
    """A cohort method's (`mutual`): the models each student trains with, in one trial."""
    noise_p: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    """Probabilities of replacing a training word by the noise token. In [0, 1]."""
    # Whether the noise reaches the teachers' inputs too (the official code feeds both one batch);
    # true is skipped by rule where noise_p is 0.
    noise_teachers: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    """Whether the noise reaches the teachers' inputs too."""
    warmup_epochs: list[int] = Field(default_factory=lambda: [0], min_length=1)
    """Epochs of fine-tuning before distilling. In [0, `train.epochs`)."""
    teacher_weights: list[float] | None = None
    """Weights of the teachers' logits, one per teacher (null: the mean)."""
    # Recipes to train the block's trials with (orchestrator/spec/recipes.py): default = the space's own.
    recipe: list[str] = Field(default_factory=lambda: [recipes.DEFAULT], min_length=1)
    """Recipes to train the block's trials with (`default`: the space's own values)."""

    @property
    def models(self) -> list[str]:
        """Every model the block names, in order: teachers, assistants, students, peers."""
        return [*(t for teacher_set in self.teachers for t in teacher_set),
                *(a for chain in self.assistants for a in chain), *self.students,
                *(p for peers in self.peers for p in peers)]

    @field_validator("recipe")
    @classmethod
    def _known_recipes(cls, values: list[str]) -> list[str]:
        for name in values:
            recipes.load(name)
        if len(set(values)) != len(values):
            raise ValueError("a recipe is listed twice")
        return values

    @model_validator(mode="after")
    def _values_of_trials(self) -> GridBlock:
        """The block's values are its trials' config values, checked by the config's own rules
        (warmup_epochs, which needs train.epochs, by the space's); an empty teacher set, or none
        for a distilling method, is a trial without teachers."""
        for p in self.noise_p:
            config.check_noise_p(p)
        distilling = [m for m in self.methods if methods.get(m).distils]
        for teacher_set in (self.teachers or [[]]) if distilling else []:
            config.check_teachers(distilling[0], teacher_set)
            if self.teacher_weights is not None:
                config.check_teacher_weights(self.teacher_weights, teacher_set)
        self._check_chains(distilling)
        self._check_cohorts()
        return self

    def _check_cohorts(self) -> None:
        """Peers go with a cohort method, and a cohort method with peers (a cohort of one is a
        fine-tune); its block names no teachers or assistants."""
        cohort = [m for m in self.methods if methods.get(m).cohort]
        lists = [peers for peers in self.peers if peers]
        if not cohort:
            if lists:
                raise ValueError(f"peers {lists[0]} apply to a method that trains a cohort "
                                 f"({', '.join(m for m in methods.names() if methods.get(m).cohort)}); "
                                 "add it, or drop peers")
            return
        if len(cohort) != len(self.methods):
            other = next(m for m in self.methods if m not in cohort)
            raise ValueError(f"methods {cohort[0]!r} and {other!r} in one block: a cohort's peers "
                             f"would not apply to {other!r}; give {cohort[0]!r} a block of its own")
        if len(lists) != len(self.peers):
            raise ValueError(f"peers [] with method {cohort[0]!r}: a cohort of one; list the models "
                             "each student trains with, e.g. peers: [[minilm@2]]")
        if self.teachers or any(self.assistants):
            raise ValueError(f"method {cohort[0]!r} trains its cohort without teachers or assistants "
                             "here; drop teachers and assistants from its block")
        if any(self.noise_p) or any(self.warmup_epochs) or any(self.noise_teachers):
            raise ValueError(f"noise_p and warmup_epochs vary a distillation; method {cohort[0]!r} "
                             "trains its cohort on clean text from the first step: drop them from its block")
        if len({tuple(peers) for peers in self.peers}) != len(self.peers):
            raise ValueError("a peers list is given twice")

    def _check_chains(self, distilling: list[str]) -> None:
        """A chain has a distilling method to run its hops, no model twice (a cycle: the model
        would teach its own teacher) and never the student, which is the chain's end."""
        chains = [chain for chain in self.assistants if chain]
        if chains and not distilling:
            raise ValueError(f"assistants {chains[0]} need a distilling method to run their hops; "
                             f"add one of {', '.join(m for m in methods.names() if methods.get(m).distils)}")
        if len({tuple(chain) for chain in self.assistants}) != len(self.assistants):
            raise ValueError("an assistant chain is listed twice")
        for chain in chains:
            for model in chain:
                if chain.count(model) > 1:
                    raise ValueError(f"assistants {chain}: {model!r} appears twice, a cycle (it would "
                                     "teach its own teacher); list each assistant once")
                if model in self.students:
                    raise ValueError(f"assistants {chain}: {model!r} is a student of this block, the "
                                     "chain's end; an assistant is a model between teachers and student")
