"""``python -m orchestrator.report``: the only sweep by default, and one line, exit 2, for every
mistake (unknown sweep, several sweeps, no finished runs, an unreachable, missing or broken store)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import paths
from orchestrator.report.cli import main
from orchestrator.tracking.store import HEALTH_TIMEOUT_S
from tests.orchestrator.report.store import PARTIAL_SPECS, Store, add_sweep, make_store, one_error_line


def test_main_defaults_to_the_only_sweep(tmp_path: Path, empty_database: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    solo = make_store(tmp_path / "solo", empty_database)
    add_sweep(solo, "cpu_solo", PARTIAL_SPECS[:1], (0, 1), {})
    out = tmp_path / "out"
    assert main(["--tracking-uri", solo.uri, "--report-dir", str(out)]) == 0
    printed = capsys.readouterr()
    # No distillation in this sweep, so BERT is a fine-tuned student: 6 and 7 of 200 wrong.
    assert str(out) in printed.out and "| BERT (fine-tuned) | 96.75 ± 0.35 (n=2)" in printed.out
    assert (out / "README.md").is_file()


def test_unknown_sweep_lists_existing(store: Store, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tracking-uri", store.uri, "--sweep", "nope", "--report-dir", str(tmp_path)]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert "'nope'" in line and "paper_mini" in line and "cpu_partial" in line


def test_several_sweeps_need_a_name(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tracking-uri", store.uri]) == 2
    assert "--sweep" in one_error_line(capsys)


def test_sweep_without_finished_runs(store: Store, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--tracking-uri", store.uri, "--sweep", "empty", "--report-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "python -m orchestrator.sweep --name empty" in one_error_line(capsys)


def test_unreachable_server_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert time.monotonic() - started < HEALTH_TIMEOUT_S + 2
    assert "cannot reach" in one_error_line(capsys)


def test_missing_database_is_not_created(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "nowhere.db"
    assert main(["--tracking-uri", f"sqlite:///{database}"]) == 2
    assert str(database) in one_error_line(capsys)
    assert not database.exists()


def test_a_broken_store_is_named_as_every_command_names_it(tmp_path: Path, empty_database: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A SQLite file that opens (so the store check passes) but that MLflow refuses when it reads
    it: one line naming the store and the fix, as the sweep, predict and the demo say it."""
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_database, database)
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'garbage'")
    connection.close()
    assert main(["--tracking-uri", f"sqlite:///{database}", "--report-dir", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: MLflow store sqlite:///{database}: Detected out-of-date database "
                           "schema (found version garbage"), line
    assert line.endswith("; repair the store or pass another --tracking-uri")
    assert not (tmp_path / "out").exists()


def test_command_line_error_has_no_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "orchestrator.report", "--tracking-uri",
                           "http://127.0.0.1:9"], capture_output=True, text=True,
                          cwd=paths.PROJECT_ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach") and done.stderr.count("\n") == 1


def test_the_store_defaults_to_MLFLOW_TRACKING_URI(tmp_path: Path, empty_database: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    solo = make_store(tmp_path / "solo", empty_database)
    add_sweep(solo, "cpu_solo", PARTIAL_SPECS[:1], (0,), {})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", solo.uri)
    assert main(["--report-dir", str(tmp_path / "out")]) == 0
    assert "Report for sweep 'cpu_solo'" in capsys.readouterr().out
