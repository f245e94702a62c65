"""SST-2 loading and the original work's split protocol.

Split (DESIGN.md): GLUE train is de-duplicated by sentence (it holds 371 repeated phrases; a phrase
must not sit in train and test at once), shuffled with ``split_seed``, and cut into train
(``train_size``), quiz (``quiz_size``) and, for ``test_split="heldout"``, test (``test_size``);
validation is GLUE dev. With ``test_split="sst2-test"`` the labeled sentence-level test is the test.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainers.config import DataConfig
from trainers.errors import UserError

HUB_DATASET = ("nyu-mll/glue", "sst2")
FILES = ("train.tsv", "validation.tsv", "test.tsv")


class DataError(UserError):
    """The data is missing or malformed; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Examples:
    """Sentences with labels; ``ids`` are row numbers in the source split, for traceability."""

    sentences: tuple[str, ...]
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.sentences)

    def take(self, rows: np.ndarray) -> Examples:
        return Examples(tuple(self.sentences[i] for i in rows), self.labels[rows], self.ids[rows])


_EMPTY = Examples((), np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Splits:
    train: Examples
    quiz: Examples
    validation: Examples
    test: Examples
    fingerprint: str  # content key of the split: source bytes + split settings

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "quiz", "validation", "test")}


def read_tsv(path: Path) -> Examples:
    """Read a GLUE-style ``sentence<TAB>label`` file with its header; no quoting, stripped text."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; a data folder needs {', '.join(FILES)}")
    try:
        return _parse_tsv(path)
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


def _load_local(folder: Path, labeled_test: bool) -> tuple[Examples, Examples, Examples, str]:
    """Train and validation; the test file only when it is the test split (a GLUE test.tsv has
    no labels, and a file that is not used must not change the split's fingerprint)."""
    if not folder.is_dir():
        raise DataError(f"data folder {folder} not found: set data.source to a folder with "
                        f"{', '.join(FILES)}, or to 'hub' to download {'/'.join(HUB_DATASET)}")
    names = FILES if labeled_test else FILES[:2]
    digest = hashlib.sha256()
    for name in names:
        if (folder / name).is_file():
            digest.update((folder / name).read_bytes())
    test = _EMPTY
    if labeled_test:
        if not (folder / "test.tsv").is_file():
            raise DataError(f"data.test_split='sst2-test' needs a labeled test.tsv in {folder}; "
                            "use test_split: heldout")
        test = read_tsv(folder / "test.tsv")
    return read_tsv(folder / "train.tsv"), read_tsv(folder / "validation.tsv"), test, digest.hexdigest()


def _load_hub() -> tuple[Examples, Examples, Examples, str]:
    """GLUE SST-2 from the Hugging Face hub (users with network). Its test labels are hidden (-1)."""
    try:
        import datasets

        glue = datasets.load_dataset(*HUB_DATASET)
    except Exception as error:  # the hub raises many types; the user needs one line
        raise DataError(f"cannot load {'/'.join(HUB_DATASET)} from the Hugging Face hub "
                        f"({type(error).__name__}); set data.source to a local folder with "
                        f"{', '.join(FILES)}") from None

    def convert(split: str) -> Examples:
        rows = glue[split]
        return Examples(tuple(s.strip() for s in rows["sentence"]),
                        np.asarray(rows["label"], dtype=np.int64), np.asarray(rows["idx"], np.int64))

    test = convert("test")
    if (test.labels < 0).any():
        test = _EMPTY
    return convert("train"), convert("validation"), test, "hub:" + "/".join(HUB_DATASET)


def _first_occurrences(sentences: tuple[str, ...], exclude: set[str]) -> np.ndarray:
    """Rows of the first occurrence of each sentence not in ``exclude``."""
    seen: dict[str, int] = {}
    for row, sentence in enumerate(sentences):
        if sentence not in exclude:
            seen.setdefault(sentence, row)
    return np.fromiter(seen.values(), dtype=np.int64)


def load_splits(config: DataConfig) -> Splits:
    """Load SST-2 and cut it as the config says; raises :class:`DataError` with a one-line fix."""
    sentence_test = config.test_split == "sst2-test"
    if config.source == "hub":
        train_all, validation, labeled_test, source_key = _load_hub()
    else:
        train_all, validation, labeled_test, source_key = _load_local(Path(config.source), sentence_test)
    # No train or quiz sentence may also be a validation or test sentence (GLUE train holds two of
    # the sentence-level test sentences verbatim).
    held_out = set(validation.sentences) | (set(labeled_test.sentences) if sentence_test else set())
    pool = train_all.take(_first_occurrences(train_all.sentences, held_out))
    needed = config.train_size + config.quiz_size
    needed += config.test_size if config.test_split == "heldout" else 0
    if needed > len(pool):
        raise DataError(f"data.train_size + quiz_size"
                        f"{' + test_size' if config.test_split == 'heldout' else ''}"
                        f" = {needed} exceeds the {len(pool)} distinct GLUE train sentences in "
                        f"{config.source}; lower the sizes")
    order = np.random.default_rng(config.split_seed).permutation(len(pool))
    train = pool.take(order[:config.train_size])
    quiz = pool.take(order[config.train_size:config.train_size + config.quiz_size])
    if config.test_split == "heldout":
        test = pool.take(order[config.train_size + config.quiz_size:needed])
    else:
        if len(labeled_test) == 0:
            raise DataError(f"data.test_split='sst2-test' needs a labeled test set in {config.source}; "
                            "use test_split: heldout")
        test = labeled_test
    settings = json.dumps([source_key, config.train_size, config.quiz_size, config.test_size,
                           config.test_split, config.split_seed])
    fingerprint = hashlib.sha256(settings.encode()).hexdigest()[:16]
    return Splits(train, quiz, validation, test, fingerprint)
