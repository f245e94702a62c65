"""The split protocol on the real SST-2 files: sizes, disjointness, seeding, and bad data."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SST2
from trainers.config import DataConfig
from trainers.data import DataError, load_splits


@pytest.fixture(scope="module")
def paper_split():
    return load_splits(DataConfig(source=str(SST2)))


def test_paper_protocol_sizes(paper_split):
    assert paper_split.sizes() == {"train": 30_000, "quiz": 100, "validation": 872, "test": 2_000}


def test_train_quiz_test_are_disjoint_by_text_and_row(paper_split):
    texts = [set(getattr(paper_split, n).sentences) for n in ("train", "quiz", "test")]
    rows = [set(getattr(paper_split, n).ids.tolist()) for n in ("train", "quiz", "test")]
    for group in (texts, rows):
        assert not group[0] & group[1] and not group[0] & group[2] and not group[1] & group[2]
    assert not set(paper_split.validation.sentences) & texts[0]
    assert len(texts[0]) == 30_000  # duplicates removed before splitting


def test_split_is_seeded(paper_split):
    again = load_splits(DataConfig(source=str(SST2)))
    other = load_splits(DataConfig(source=str(SST2), split_seed=1))
    assert again.train.sentences == paper_split.train.sentences
    assert again.fingerprint == paper_split.fingerprint
    assert other.train.sentences != paper_split.train.sentences
    assert other.fingerprint != paper_split.fingerprint


def test_text_is_stripped_and_labels_binary(paper_split):
    assert all(s == s.strip() for s in paper_split.train.sentences[:1000])
    assert set(paper_split.train.labels.tolist()) == {0, 1}


def test_labeled_sentence_test_option():
    splits = load_splits(DataConfig(source=str(SST2), test_split="sst2-test", train_size=1000))
    assert len(splits.test) == 1_821 and splits.test.labels.sum() == 909


def _copy(tmp_path):
    folder = tmp_path / "sst2"
    shutil.copytree(SST2, folder, ignore=shutil.ignore_patterns("raw"))
    for file in folder.iterdir():
        file.chmod(0o644)
    return folder


@pytest.mark.parametrize("row, expected", [
    ("a fine film\t2\n", "train.tsv:3: label '2' is not 0 or 1"),
    ("no tab here\n", "train.tsv:3: malformed row"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, expected):
    folder = _copy(tmp_path)
    lines = (folder / "train.tsv").read_text().splitlines(keepends=True)
    lines.insert(2, row)
    (folder / "train.tsv").write_text("".join(lines))
    with pytest.raises(DataError, match=expected):
        load_splits(DataConfig(source=str(folder), train_size=100, quiz_size=10, test_size=10))


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="data folder .* not found: set data.source"):
        load_splits(DataConfig(source=str(tmp_path / "nope")))
    folder = _copy(tmp_path)
    (folder / "validation.tsv").unlink()
    with pytest.raises(DataError, match="validation.tsv: file not found"):
        load_splits(DataConfig(source=str(folder), train_size=100))


def test_sizes_larger_than_the_data():
    with pytest.raises(DataError, match="exceeds the 66978 distinct GLUE train sentences"):
        load_splits(DataConfig(source=str(SST2), train_size=66_000))
