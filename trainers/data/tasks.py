"""The GLUE tasks a sweep can run: their text columns, labels, metrics and where they come from.

A task fixes what the rest of the code must not hard-code: how many texts an example has (one
sentence, or a pair whose two sentences each model tokenizes together, with segment ids where the
architecture has them), how many labels it has, and which of GLUE's metrics score it, the main one
first (the report's headline and the one significance tests compare):

- accuracy for every task; F1 of the positive class (label 1) for MRPC and QQP, whose classes are
  unbalanced (MRPC: 68 % paraphrases), so accuracy alone flatters a majority-class guess;
- Matthews' correlation for CoLA, GLUE's only metric there (its unacceptable class is the rare one).

STS-B is a regression task (a similarity score in [0, 5], Pearson/Spearman): the training steps
here are classifiers (cross-entropy, softened logits), so it is refused in one line.

Local folders hold one TSV per split with a header; ``tsv_layouts`` are the headers a task's files
may have, as (label column, text column, ...): the hub's column names, or GLUE's original files'
(MRPC's ``Quality  #1 ID  #2 ID  #1 String  #2 String``). The validation file is ``validation.tsv``
or GLUE's ``dev.tsv``.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainers.errors import UserError

METRICS = ("accuracy", "f1", "matthews")
GLUE_HUB = "nyu-mll/glue"


class TaskError(UserError):
    """An unknown or unsupported task; the message names the value and the fix."""


@dataclass(frozen=True)
class Task:
    name: str
    title: str  # as papers write it: SST-2, MRPC, CoLA
    text_columns: tuple[str, ...]  # the hub's column names, one or two
    num_labels: int
    metrics: tuple[str, ...]  # the main metric first
    hub_config: str  # the configuration of ``nyu-mll/glue``
    dev_size: int  # GLUE dev (the validation split), examples
    validation_split: str = "validation"
    tsv_layouts: tuple[tuple[str, ...], ...] = ()
    # Mean WordPiece tokens of a training example ÷ SST-2's 13.3 (BERT uncased vocabulary, measured
    # on the shared files: MRPC's pairs 53.2); the dry run's cost per example scales with it. 1.0
    # where not measured here.
    length_ratio: float = 1.0
    # The classes' names by label, GLUE's: in a saved model's id2label, and what predict prints.
    labels: tuple[str, ...] = ("negative", "positive")

    def __post_init__(self) -> None:
        if len(self.labels) != self.num_labels:
            raise TaskError(f"task {self.name!r}: {len(self.labels)} label names, {self.num_labels} labels")
        if len(self.text_columns) not in (1, 2):
            raise TaskError(f"task {self.name!r}: {len(self.text_columns)} text columns; GLUE has 1 or 2")
        if self.num_labels < 2 or not self.metrics or set(self.metrics) - set(METRICS):
            raise TaskError(f"task {self.name!r}: needs >= 2 labels and metrics among {METRICS}")
        if "f1" in self.metrics and self.num_labels != 2:
            raise TaskError(f"task {self.name!r}: F1 of the positive class needs 2 labels")

    @property
    def pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def layouts(self) -> tuple[tuple[str, ...], ...]:
        """Accepted TSV headers as (label, text, ...): the hub's names, then the task's own."""
        return (("label", *self.text_columns), *self.tsv_layouts)

    def describe_layouts(self) -> str:
        return " or ".join("<TAB>".join(layout[1:] + layout[:1]) for layout in self.layouts)


_PAIR = ("sentence1", "sentence2")
TASKS: dict[str, Task] = {task.name: task for task in (
    Task("sst2", "SST-2", ("sentence",), 2, ("accuracy",), "sst2", 872),
    Task("mrpc", "MRPC", _PAIR, 2, ("f1", "accuracy"), "mrpc", 408,
         tsv_layouts=(("Quality", "#1 String", "#2 String"),), length_ratio=4.0,
         labels=("not_equivalent", "equivalent")),
    Task("cola", "CoLA", ("sentence",), 2, ("matthews", "accuracy"), "cola", 1_043,
         labels=("unacceptable", "acceptable")),
    Task("qqp", "QQP", ("question1", "question2"), 2, ("f1", "accuracy"), "qqp", 40_430,
         labels=("not_duplicate", "duplicate")),
    Task("qnli", "QNLI", ("question", "sentence"), 2, ("accuracy",), "qnli", 5_463,
         labels=("entailment", "not_entailment")),
    Task("rte", "RTE", _PAIR, 2, ("accuracy",), "rte", 277, labels=("entailment", "not_entailment")),
    Task("wnli", "WNLI", _PAIR, 2, ("accuracy",), "wnli", 71, labels=("not_entailment", "entailment")),
    Task("mnli", "MNLI", ("premise", "hypothesis"), 3, ("accuracy",), "mnli", 9_815,
         validation_split="validation_matched", labels=("entailment", "neutral", "contradiction")),
)}
REGRESSION = ("stsb",)


def task_error(name: object) -> str | None:
    """Why ``name`` is not a runnable task, or ``None`` when it is (for the config's one line)."""
    if name in REGRESSION:
        return (f"{name} is a regression task (Pearson/Spearman of a score); only classification "
                f"tasks are supported: use one of {', '.join(TASKS)}")
    if name not in TASKS:
        return f"unknown task; use one of {', '.join(TASKS)}"
    return None


def get(name: str) -> Task:
    reason = task_error(name)
    if reason is not None:
        raise TaskError(f"data.task={name!r}: {reason}")
    return TASKS[name]
