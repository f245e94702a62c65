"""GLUE task loading (SST-2 by default) and the original work's split protocol.

Split (DESIGN.md): GLUE train is de-duplicated by text (SST-2 holds 371 repeated phrases; a text
must not sit in train and test at once; a pair task's text is the pair), shuffled with
``split_seed``, and cut into train (``train_size``), quiz (``quiz_size``) and, for
``test_split="heldout"``, test (``test_size``); validation is GLUE dev. With ``labeled`` (SST-2:
also ``sst2-test``) the task's labeled test file is the test.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainers.config import DataConfig
from trainers.data import tasks
from trainers.data.tasks import GLUE_HUB, Task
from trainers.errors import UserError

HUB_DATASET = (GLUE_HUB, "sst2")
FILES = ("train.tsv", "validation.tsv", "test.tsv")
DEV_FILE = "dev.tsv"  # GLUE's original name for the validation file (MRPC's folder has it)


class DataError(UserError):
    """The data is missing or malformed; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Examples:
    """Texts with labels; ``ids`` are row numbers in the source split, for traceability.
    ``sentences`` are the first texts; ``second`` the second sentences of a pair task (``None``
    for a single-sentence task)."""

    sentences: tuple[str, ...]
    labels: np.ndarray
    ids: np.ndarray
    second: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.sentences)

    def take(self, rows: np.ndarray) -> Examples:
        second = None if self.second is None else tuple(self.second[i] for i in rows)
        return Examples(tuple(self.sentences[i] for i in rows), self.labels[rows], self.ids[rows], second)

    def texts(self) -> tuple[str, ...] | tuple[tuple[str, str], ...]:
        """What identifies an example's text: its sentence, or its pair."""
        return self.sentences if self.second is None else tuple(zip(self.sentences, self.second))


_EMPTY = Examples((), np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Splits:
    train: Examples
    quiz: Examples
    validation: Examples
    test: Examples
    fingerprint: str  # content key of the split: source bytes + split settings
    task: Task = tasks.TASKS["sst2"]

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "quiz", "validation", "test")}


def read_tsv(path: Path, task: Task = tasks.TASKS["sst2"]) -> Examples:
    """Read a GLUE-style TSV with its header (``sentence<TAB>label`` for SST-2; the columns
    ``task.layouts`` name for any task); no quoting (MRPC's text holds ``"``), stripped text."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; a data folder needs {', '.join(FILES)}")
    try:
        if task.name == "sst2":
            return _parse_tsv(path)
        return _parse_task_tsv(path, task)
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied; make it readable") from None


def _parse_tsv(path: Path) -> Examples:
    sentences: list[str] = []
    labels: list[int] = []
    with path.open(encoding="utf-8", newline="\n") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header[:2] != ["sentence", "label"]:
            raise DataError(f"{path}:1: header is {header!r}, expected 'sentence<TAB>label'")
        for line_no, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2 or not fields[0].strip():
                raise DataError(f"{path}:{line_no}: malformed row {line.rstrip()[:60]!r}, "
                                "expected 'sentence<TAB>label'")
            if fields[1] not in ("0", "1"):
                raise DataError(f"{path}:{line_no}: label {fields[1]!r} is not 0 or 1")
            sentences.append(fields[0].strip())
            labels.append(int(fields[1]))
    if not sentences:
        raise DataError(f"{path}: no rows after the header")
    return Examples(tuple(sentences), np.asarray(labels, dtype=np.int64),
                    np.arange(len(sentences), dtype=np.int64))


def _labels_named(labels: int) -> str:
    values = [str(v) for v in range(labels)]
    return f"{', '.join(values[:-1])} or {values[-1]}"


def _parse_task_tsv(path: Path, task: Task) -> Examples:
    """Rows of any task's file: its header must hold one of ``task.layouts``; extra columns (ids)
    are ignored; a label must be one of the task's."""
    texts: list[list[str]] = [[] for _ in task.text_columns]
    labels: list[int] = []
    allowed = {str(v): v for v in range(task.num_labels)}
    with path.open(encoding="utf-8", newline="\n") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        layout = next((layout for layout in task.layouts if set(layout) <= set(header)), None)
        if layout is None:
            raise DataError(f"{path}:1: header {header!r} does not hold task {task.name}'s columns "
                            f"({task.describe_layouts()}); set data.task to this folder's task or "
                            f"data.source to a {task.name} folder")
        where = [header.index(name) for name in layout]
        for line_no, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(header) or not all(fields[i].strip() for i in where[1:]):
                raise DataError(f"{path}:{line_no}: malformed row {line.rstrip()[:60]!r}, expected "
                                f"{len(header)} tab-separated columns with non-empty text")
            label = fields[where[0]]
            if label not in allowed:
                raise DataError(f"{path}:{line_no}: label {label!r} is not {_labels_named(task.num_labels)} "
                                f"(task {task.name} has {task.num_labels} labels); fix the row or data.task")
            labels.append(allowed[label])
            for column, i in zip(texts, where[1:]):
                column.append(fields[i].strip())
    if not labels:
        raise DataError(f"{path}: no rows after the header")
    return Examples(tuple(texts[0]), np.asarray(labels, dtype=np.int64),
                    np.arange(len(labels), dtype=np.int64), tuple(texts[1]) if task.pair else None)


def _validation_file(folder: Path, task: Task) -> Path:
    """``validation.tsv``, or GLUE's original ``dev.tsv`` for a task other than SST-2."""
    if task.name != "sst2" and not (folder / FILES[1]).is_file() and (folder / DEV_FILE).is_file():
        return folder / DEV_FILE
    return folder / FILES[1]


def _load_local(folder: Path, task: Task, labeled_test: bool
                ) -> tuple[Examples, Examples, Examples, str]:
    """Train and validation; the test file only when it is the test split (a GLUE test.tsv has
    no labels, and a file that is not used must not change the split's fingerprint)."""
    if not folder.is_dir():
        raise DataError(f"data folder {folder} not found: set data.source to a folder with "
                        f"{', '.join(FILES)}, or to 'hub' to download {GLUE_HUB}/{task.hub_config}")
    files = [folder / FILES[0], _validation_file(folder, task)]
    files += [folder / FILES[2]] if labeled_test else []
    digest = hashlib.sha256()
    for file in files:
        if file.is_file():
            digest.update(file.read_bytes())
    test = _EMPTY
    if labeled_test:
        if not files[2].is_file():
            raise DataError(f"data.test_split='labeled' needs a labeled test.tsv in {folder}; "
                            "use test_split: heldout")
        test = read_tsv(files[2], task)
    return read_tsv(files[0], task), read_tsv(files[1], task), test, digest.hexdigest()


def _load_hub(task: Task) -> tuple[Examples, Examples, Examples, str]:
    """A GLUE task from the Hugging Face hub (users with network). Its test labels are hidden (-1)."""
    name = f"{GLUE_HUB}/{task.hub_config}"
    try:
        import datasets

        glue = datasets.load_dataset(GLUE_HUB, task.hub_config)
    except Exception as error:  # the hub raises many types; the user needs one line
        raise DataError(f"cannot load {name} from the Hugging Face hub ({type(error).__name__}); "
                        f"set METADISTIL_DATA to an offline data folder with {task.name}/ in it, or "
                        f"data.source to a folder with {', '.join(FILES)}") from None

    def convert(split: str) -> Examples:
        rows = glue[split]
        first, *rest = ([s.strip() for s in rows[column]] for column in task.text_columns)
        return Examples(tuple(first), np.asarray(rows["label"], dtype=np.int64),
                        np.asarray(rows["idx"], np.int64), tuple(rest[0]) if rest else None)

    test = convert("test_matched" if task.name == "mnli" else "test")
    if (test.labels < 0).any():
        test = _EMPTY
    return convert("train"), convert(task.validation_split), test, "hub:" + name


def _first_occurrences(texts: tuple, exclude: set) -> np.ndarray:
    """Rows of the first occurrence of each text (sentence or pair) not in ``exclude``."""
    seen: dict = {}
    for row, text in enumerate(texts):
        if text not in exclude:
            seen.setdefault(text, row)
    return np.fromiter(seen.values(), dtype=np.int64)


def load_splits(config: DataConfig) -> Splits:
    """Load the task and cut it as the config says; raises :class:`DataError` with a one-line fix."""
    task = tasks.get(config.task)
    labeled = config.test_split != "heldout"
    if config.source == "hub":
        train_all, validation, labeled_test, source_key = _load_hub(task)
    else:
        train_all, validation, labeled_test, source_key = _load_local(Path(config.source), task, labeled)
    # No train or quiz text may also be a validation or test text (GLUE train holds two of the
    # sentence-level SST-2 test sentences verbatim).
    held_out = set(validation.texts()) | (set(labeled_test.texts()) if labeled else set())
    pool = train_all.take(_first_occurrences(train_all.texts(), held_out))
    needed = config.train_size + config.quiz_size
    needed += config.test_size if not labeled else 0
    if needed > len(pool):
        raise DataError(f"data.train_size + quiz_size{' + test_size' if not labeled else ''}"
                        f" = {needed} exceeds the {len(pool)} distinct GLUE train "
                        f"{'pairs' if task.pair else 'sentences'} in {config.source}; lower the sizes")
    order = np.random.default_rng(config.split_seed).permutation(len(pool))
    train = pool.take(order[:config.train_size])
    quiz = pool.take(order[config.train_size:config.train_size + config.quiz_size])
    if not labeled:
        test = pool.take(order[config.train_size + config.quiz_size:needed])
    else:
        if len(labeled_test) == 0:
            raise DataError(f"data.test_split={config.test_split!r} needs a labeled test set in "
                            f"{config.source}; use test_split: heldout")
        test = labeled_test
    # SST-2's settings are hashed as before the tasks existed (its stored trials keep their keys);
    # its two names for the labeled test are one split.
    test_split = "sst2-test" if labeled and task.name == "sst2" else config.test_split
    settings = [source_key, config.train_size, config.quiz_size, config.test_size, test_split,
                config.split_seed] + ([task.name] if task.name != "sst2" else [])
    fingerprint = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]
    return Splits(train, quiz, validation, test, fingerprint, task)
