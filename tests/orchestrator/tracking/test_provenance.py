"""The context tags of a run the driver creates: MLflow's user and source, and the git commit and
branch of the project's checkout (not of the program's file); outside a checkout, no commit."""

from __future__ import annotations

import subprocess

import pytest
from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_TYPE, MLFLOW_USER

from orchestrator.paths import PROJECT_ROOT
from orchestrator.tracking import provenance


@pytest.fixture()
def fresh():
    provenance.context_tags.cache_clear()
    yield
    provenance.context_tags.cache_clear()


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def test_the_checkouts_commit_and_branch_with_mlflows_own_tags(fresh):
    commit, branch = _git("rev-parse", "HEAD"), _git("rev-parse", "--abbrev-ref", "HEAD")
    if commit is None:
        pytest.skip("the project is not a git checkout here")
    tags = provenance.context_tags()
    assert tags[MLFLOW_GIT_COMMIT] == commit
    if branch != "HEAD":  # a detached checkout has no branch
        assert tags[MLFLOW_GIT_BRANCH] == branch
    assert {MLFLOW_USER, MLFLOW_SOURCE_TYPE} <= set(tags)
    assert all(isinstance(v, str) and v for v in tags.values())
    assert provenance.context_tags() is tags  # resolved once per process


def test_outside_a_checkout_there_is_no_commit_tag(fresh, tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)
    tags = provenance.context_tags()
    assert MLFLOW_GIT_COMMIT not in tags and MLFLOW_GIT_BRANCH not in tags
    assert MLFLOW_USER in tags
