"""The split protocol on the real SST-2 files: sizes, disjointness, seeding, and bad data."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import MRPC, SST2
from trainers.config import DataConfig
from trainers.data.glue import DataError, load_splits


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


def test_mrpc_pairs_split_disjointly_with_its_labeled_test():
    """GLUE MRPC from its original files: every row read (its text holds '"'), pairs kept together,
    the labeled MSR test used, train and quiz disjoint pairs, seeded."""
    config = DataConfig(source=str(MRPC), task="mrpc", test_split="labeled", train_size=3_000,
                        quiz_size=100)
    splits = load_splits(config)
    assert splits.task.name == "mrpc" and splits.task.pair
    assert splits.sizes() == {"train": 3_000, "quiz": 100, "validation": 408, "test": 1_725}
    assert splits.validation.labels.sum() == 279 and splits.test.labels.sum() == 1_147
    assert len(splits.train.second) == 3_000 and len(splits.quiz.second) == 100
    assert not set(splits.train.texts()) & set(splits.quiz.texts())
    assert any('"' in s for s in splits.train.sentences + splits.train.second)
    assert load_splits(config).train.texts() == splits.train.texts()
    other = load_splits(DataConfig(source=str(MRPC), task="mrpc", test_split="labeled",
                                   train_size=3_000, quiz_size=100, split_seed=1))
    assert other.train.texts() != splits.train.texts() and other.fingerprint != splits.fingerprint


def test_mrpc_heldout_test_and_every_train_row_read():
    splits = load_splits(DataConfig(source=str(MRPC), task="mrpc", train_size=3_000, quiz_size=100,
                                    test_size=568))
    assert splits.sizes()["test"] == 568  # 3,668 rows, all distinct pairs, none lost to quoting
    with pytest.raises(DataError, match="exceeds the 3668 distinct GLUE train pairs"):
        load_splits(DataConfig(source=str(MRPC), task="mrpc", train_size=3_000, quiz_size=100,
                               test_size=569))


def test_sst2_labeled_is_the_sentence_test_under_one_key():
    old = load_splits(DataConfig(source=str(SST2), test_split="sst2-test", train_size=1000))
    new = load_splits(DataConfig(source=str(SST2), test_split="labeled", train_size=1000))
    assert new.fingerprint == old.fingerprint and new.test.sentences == old.test.sentences


def test_a_hub_task_reads_its_own_columns_and_splits(monkeypatch):
    """Without network here: ``datasets.load_dataset`` stands in with GLUE's column layout (MNLI:
    premise/hypothesis, validation_matched, test labels hidden as -1)."""
    import datasets

    def split(n: int, hidden: bool = False, start: int = 0) -> dict:
        return {"premise": [f"premise {start + i} " for i in range(n)],
                "hypothesis": [f"hypothesis {start + i}" for i in range(n)],
                "label": [-1 if hidden else i % 3 for i in range(n)], "idx": list(range(n))}

    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args: asked.append(args) or {
        "train": split(50), "validation_matched": split(9, start=100),
        "test_matched": split(7, hidden=True, start=200)})
    splits = load_splits(DataConfig(source="hub", task="mnli", train_size=30, quiz_size=5, test_size=10))
    assert asked == [("nyu-mll/glue", "mnli")]
    assert splits.sizes() == {"train": 30, "quiz": 5, "validation": 9, "test": 10}
    assert splits.train.sentences[0].startswith("premise") and splits.train.second[0].startswith("hypothesis")
    assert set(splits.train.labels.tolist()) <= {0, 1, 2} and splits.task.num_labels == 3
    with pytest.raises(DataError, match="needs a labeled test set"):
        load_splits(DataConfig(source="hub", task="mnli", test_split="labeled", train_size=30, quiz_size=5))
