"""An Optuna search's studies and the record of what they suggested.

Under ``search: {algorithm: optuna}`` each grid combination whose trial draws a value is one
study: its ``template`` is the trial as the planner builds it for sample 0, and each suggestion
replaces the template's searched values (``plan.suggested``). Unlike a random draw, a suggestion
depends on the results told before it, so it cannot be drawn again by a re-run: every suggestion
is recorded in the storage (``StorageLayout.suggestions_file``, one file per sweep) before its
trial starts. A re-run plans the recorded suggestions as trials like any other (a finished one is
reused, an interrupted one resumes from its checkpoint), tells a fresh study their results, and
asks it only for what ``num_samples`` still lacks.

A study's id (``group``) hashes its grid combination (the template's tags but the sample's), its
distributions (kind and exact arguments) and the search's seed, metric and mode: change any of them
and the study starts afresh, its earlier suggestions left in the file, unused.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.spec.search import Distribution, SearchSpec
from orchestrator.tracking.names import SAMPLE_TAGS
from trainers.record.atomic import staged
from trainers.record.layout import StorageLayout


@dataclass(frozen=True)
class Suggestion:
    """Sample ``sample`` of a study: the value of each searched key."""

    sample: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Study:
    """One grid combination's search. ``template`` is a ``plan.PlannedTrial`` (sample 0's draws in
    its config, which a suggestion replaces); ``space`` the distribution of each searched key;
    ``recorded`` the suggestions made so far, by sample, the first ``num_samples`` of them."""

    group: str
    template: Any
    space: dict[str, Distribution]
    recorded: tuple[Suggestion, ...] = ()

    def seed(self, search: SearchSpec) -> int:
        """The sampler's seed for this session: a fresh sampler with the first session's seed would
        suggest the recorded samples again, so the number recorded is part of it."""
        return zlib.crc32(f"{search.seed}/{self.group}/{len(self.recorded)}".encode())


def group_of(tags: Mapping[str, str], space: Mapping[str, Distribution], search: SearchSpec) -> str:
    """A study's id: what makes two suggestions comparable (see the module's docstring)."""
    combination = {k: v for k, v in tags.items() if k not in SAMPLE_TAGS}
    # Each distribution's kind and exact arguments (JSON writes a float's shortest exact repr):
    # its str() rounds them to 3 digits, which would let two different spaces share a study.
    exact = {k: [d.kind, list(d.args)] for k, d in space.items()}
    blob = json.dumps({"combination": combination, "space": exact,
                       "search": [search.seed, search.metric, search.mode]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Record:
    """The sweep's suggestions file: study id → its suggestions in the order they were made."""

    layout: StorageLayout
    sweep: str
    studies: dict[str, list[Suggestion]] = field(default_factory=dict)

    @classmethod
    def read(cls, layout: StorageLayout, sweep: str) -> Record:
        path = layout.suggestions_file(sweep)
        raw = json.loads(path.read_text()) if path.is_file() else {}
        return cls(layout, sweep, {group: [Suggestion(**s) for s in made] for group, made in raw.items()})

    def add(self, group: str, suggestion: Suggestion) -> None:
        """Record one suggestion, the whole file replaced at once (a killed driver leaves the old one)."""
        self.studies.setdefault(group, []).append(suggestion)
        path = self.layout.suggestions_file(self.sweep)
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = {group: [{"sample": s.sample, "values": s.values} for s in made]
               for group, made in self.studies.items()}
        with staged(path) as staging:
            staging.write_text(json.dumps(raw, indent=1))


def told(layout: StorageLayout, key: str, metric: str) -> tuple[float, list[float]] | None:
    """A finished trial's result as its study is told it: the metric at its last epoch (what Tune
    tells Optuna from a trial's last report) and at every epoch; None if it has not finished."""
    if not layout.is_done(key):
        return None
    history = json.loads(layout.result_file(key).read_text())["history"]
    values = [float(epoch[metric]) for epoch in history]
    return values[-1], values
