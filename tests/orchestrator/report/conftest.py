"""The report tests' stores and reports, built once for the package: the paper_mini and
cpu_partial reports (SST-2) are read by the tests of every report module, mrpc_mini (F1 first)
and cola_mini (Matthews' correlation first) by those of a task's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from orchestrator.report.build import ReportResult, build_report
from tests.orchestrator.report.store import (
    COLA_SPECS,
    MRPC_SPECS,
    PAPER_SPECS,
    PARTIAL_SPECS,
    Store,
    add_sweep,
    log_trial,
    make_store,
)


@pytest.fixture(scope="package")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow database to copy: migrations cost seconds, a copy nothing."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="package")
def store(tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> Store:
    """paper_mini (2 seeds, a failed extra run), cpu_partial (no KD, 1 seed), empty (no runs)."""
    store = make_store(tmp_path_factory.mktemp("mlflow"), empty_database)
    paper_id = add_sweep(store, "paper_mini", PAPER_SPECS, (0, 1),
                         {"space": "search_spaces/paper.yaml", "machine": "2-core CPU test box",
                          "command": "python -m orchestrator.sweep --name paper_mini"})
    log_trial(store, paper_id, "", "paper_mini", PAPER_SPECS[3], 2, "FAILED")
    # The same trial (same trial_key) logged again later: only the later run may count.
    log_trial(store, paper_id, "", "paper_mini", PAPER_SPECS[3], 0, "FINISHED")
    add_sweep(store, "cpu_partial", PARTIAL_SPECS, (0,), {})
    # As orchestrator.sweep tags it: the stem of the space file.
    add_sweep(store, "cpu_on_paper_space", PARTIAL_SPECS[:1], (0,), {"space": "paper"})
    empty_id = store.client.create_experiment("empty")
    store.client.create_run(empty_id, run_name="empty")
    return store


@pytest.fixture(scope="package")
def paper(store: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(store.client, "paper_mini", tmp_path_factory.mktemp("paper_out"))


@pytest.fixture(scope="package")
def partial(store: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(store.client, "cpu_partial", tmp_path_factory.mktemp("partial_out"))


@pytest.fixture(scope="package")
def tasks_store(tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> Store:
    """mrpc_mini (one seed) and cola_mini (seeds 0 and 1)."""
    store = make_store(tmp_path_factory.mktemp("tasks"), empty_database)
    add_sweep(store, "mrpc_mini", MRPC_SPECS, (0,), {})
    add_sweep(store, "cola_mini", COLA_SPECS, (0, 1), {})
    return store


@pytest.fixture(scope="package")
def mrpc(tasks_store: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(tasks_store.client, "mrpc_mini", tmp_path_factory.mktemp("mrpc_out"))


@pytest.fixture(scope="package")
def cola(tasks_store: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(tasks_store.client, "cola_mini", tmp_path_factory.mktemp("cola_out"))
