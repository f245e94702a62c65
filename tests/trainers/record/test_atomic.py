"""Atomic writes: a reader sees the whole file or folder or nothing, never a half-written one."""

from __future__ import annotations

import numpy as np
import pytest

from trainers.record.atomic import staged


def test_a_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "tokens.npz"
    with staged(target) as staging:
        np.savez(staging, flat=np.arange(3))
        assert not target.exists() and staging.suffix == ".npz"
        assert staging.name.startswith("tokens.tmp-")  # what the fault test looks for
    with np.load(target) as stored:
        assert stored["flat"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.npz"]


def test_a_folder_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "models" / "key"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    with staged(target) as staging:
        staging.mkdir()
        (staging / "result.json").write_text("{}")
        assert (target / "old.txt").is_file()
    assert sorted(p.name for p in target.iterdir()) == ["result.json"]
    assert [p.name for p in target.parent.iterdir()] == ["key"]


def test_an_error_leaves_the_target_as_it_was_and_no_staging(tmp_path):
    target = tmp_path / "cache.npy"
    target.write_text("before")
    with pytest.raises(RuntimeError), staged(target) as staging:
        staging.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["cache.npy"]


def test_without_replace_the_first_copy_wins(tmp_path):
    target = tmp_path / "tokenizer"
    with staged(target, replace=False) as first:
        first.mkdir()
        (first / "vocab.json").write_text("first")
    with staged(target, replace=False) as second:
        second.mkdir()
        (second / "vocab.json").write_text("second")
    assert (target / "vocab.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer"]
