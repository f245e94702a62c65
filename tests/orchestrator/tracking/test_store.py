"""The MLflow plumbing every command shares: redaction, the store checks, searches that read every
page, the parent run, and the one ``--tracking-uri`` option."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator import sweep
from orchestrator.paths import DEFAULT_TRACKING_URI
from orchestrator.report import cli
from orchestrator.serve import demo, predict
from orchestrator.tracking import runs
from orchestrator.tracking import store as mlflow_store
from orchestrator.tracking.store import (
    TrackingError,
    check_store,
    parent_run,
    redact,
    search_all,
    sweep_names,
)
from tests.servers import free_ports


def test_redact_hides_passwords_only():
    assert redact("http://alice:pw@host:5000") == "http://alice:***@host:5000"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"


def test_redact_for_a_committed_file_drops_the_user_too():
    assert redact("https://alice:pw@host:5000/x", keep_user=False) == "https://host:5000/x"
    assert redact("https://token@host", keep_user=False) == "https://host"
    assert redact("sqlite:///x.db", keep_user=False) == "sqlite:///x.db"


def test_a_reader_needs_an_existing_store_and_creates_none(tmp_path):
    database = tmp_path / "none.db"
    with pytest.raises(TrackingError, match="no MLflow database at .*python -m orchestrator.sweep"):
        check_store(f"sqlite:///{database}", create=False)
    assert not database.exists()
    with pytest.raises(TrackingError, match="no MLflow file store at"):
        check_store(str(tmp_path / "mlruns"), create=False)
    check_store(f"sqlite:///{database}", create=True)  # the sweep's: it fills the store
    assert database.is_file()
    with pytest.raises(TrackingError, match=r"no MLflow store in .* \(an empty database\)"):
        check_store(f"sqlite:///{database}", create=False)  # until MLflow has made its tables


def test_only_the_sweep_refuses_schemes_its_workers_cannot_log_to():
    with pytest.raises(TrackingError, match="unsupported scheme 'ftp'"):
        check_store("ftp://host/x", create=True)
    check_store("postgresql://db/mlflow", create=False)  # a reader leaves it to MLflow


class Health(BaseHTTPRequestHandler):
    """``/health`` answers 200, anything else 404; remembers whether a login was sent."""

    authorised: list[bool] = []

    def do_GET(self) -> None:  # the name http.server calls
        Health.authorised.append("Authorization" in self.headers)
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_server_must_answer_its_health_check():
    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        check_store(f"http://alice:s3cret@127.0.0.1:{port}", create=False)
        assert Health.authorised == [False]  # /health needs no login: the secret is not sent
        with pytest.raises(TrackingError, match=r"/health is unreachable \(Not Found\)"):
            check_store(f"http://127.0.0.1:{port}/elsewhere", create=True)
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_server_is_named_without_its_password():
    uri = f"http://user:s3cret@127.0.0.1:{free_ports(1)[0]}"
    for create in (True, False):
        with pytest.raises(TrackingError) as caught:
            check_store(uri, create=create, timeout_s=2)
        message = str(caught.value)
        assert message.startswith("cannot reach") and "is unreachable" in message
        assert "s3cret" not in message and "user:***@" in message


def test_searches_read_every_page(tmp_path, monkeypatch):
    monkeypatch.setattr(mlflow_store, "PAGE_SIZE", 2)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    ids = [client.create_experiment(f"s{i}", artifact_location=str(tmp_path / f"a{i}")) for i in range(5)]
    assert sweep_names(client) == [f"s{i}" for i in range(5)]
    for i in range(5):
        client.create_run(ids[0], tags={"trial_key": f"k{i}"})
    assert len(search_all(client, ids[0], "tags.trial_key != ''")) == 5
    assert set(runs.trial_runs(client, ids[0])) == {f"k{i}" for i in range(5)}


def test_the_parent_run_is_the_latest_sweep_run(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("s", artifact_location=str(tmp_path / "a"))
    assert parent_run(client, experiment) is None
    client.create_run(experiment, start_time=1_000, tags={"kind": "sweep"})
    latest = client.create_run(experiment, start_time=2_000, tags={"kind": "sweep"}).info.run_id
    client.create_run(experiment, start_time=3_000, tags={"trial_key": "k"})
    assert parent_run(client, experiment).info.run_id == latest


def test_every_command_defaults_to_MLFLOW_TRACKING_URI(monkeypatch):
    parsers = (cli.parse_args, lambda argv: predict.parse_args(["a sentence", *argv]), demo.parse_args,
               sweep.parse_args)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert [parse([]).tracking_uri for parse in parsers] == ["http://mlflow.example:5000"] * 4
    assert all(parse(["--tracking-uri", "sqlite:///x.db"]).tracking_uri == "sqlite:///x.db"
               for parse in parsers)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert [parse([]).tracking_uri for parse in parsers] == [DEFAULT_TRACKING_URI] * 4


def _command(name: str, tmp_path: Path) -> Callable[[str], int]:
    """``name``'s CLI on a store URI, with what else it needs to reach the store and no more."""
    if name == "sweep":
        space = tmp_path / "space.yaml"
        space.write_text(yaml.safe_dump({
            "name": "store", "seeds": [0], "data": {"train_size": 200, "quiz_size": 20, "test_size": 50},
            "grid": [{"methods": ["finetune"], "students": ["tinybert"]}]}))
        return lambda uri: sweep.main(["--space", str(space), "--storage", str(tmp_path / "store"),
                                       "--tracking-uri", uri])
    if name == "predict":
        return lambda uri: predict.main(["a fine film", "--tracking-uri", uri])
    if name == "demo":
        return lambda uri: demo.main(["--tracking-uri", uri, "--port", str(free_ports(1)[0])])
    return lambda uri: cli.main(["--tracking-uri", uri, "--report-dir", str(tmp_path / "report")])


@pytest.mark.parametrize("name", ["sweep", "predict", "demo", "report"])
def test_every_command_names_a_store_that_is_not_a_database_in_one_line(tmp_path, capsys, name):
    database = tmp_path / "mlflow.db"
    database.write_bytes(b"not an MLflow store\n" * 100)
    code = _command(name, tmp_path)(f"sqlite:///{database}")
    assert code == 2 and capsys.readouterr().err.strip() == (
        f"error: MLflow store sqlite:///{database}: file is not a database; repair the store or pass "
        "another --tracking-uri")
    assert not (tmp_path / "store" / "ray").exists()


@pytest.mark.parametrize("name", ["sweep", "predict", "demo", "report"])
def test_every_command_names_a_store_MLflow_refuses_in_one_line(tmp_path, capsys, name):
    """MLflow 3 refuses a file store once it opens it: the sweep before Ray starts."""
    folder = tmp_path / "mlruns"
    folder.mkdir()
    code = _command(name, tmp_path)(folder.as_uri())
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: MLflow store {folder.as_uri()}: The filesystem tracking backend")
    assert err.endswith("; repair the store or pass another --tracking-uri")
    assert not (tmp_path / "store" / "ray").exists()


@pytest.mark.parametrize("name", ["sweep", "predict", "demo", "report"])
def test_every_command_refuses_a_database_of_something_else_and_leaves_it_alone(tmp_path, capsys, name):
    """MLflow would add its tables to any SQLite database it is pointed at, a reader's too."""
    database = tmp_path / "inventory.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("CREATE TABLE items (name TEXT)")
    code = _command(name, tmp_path)(f"sqlite:///{database}")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        f"error: tracking URI sqlite:///{database}: {database} is a SQLite database but not an MLflow "
        "store (its tables: items); pass the --tracking-uri of a sweep's store, or a new file for a new one")
    with closing(sqlite3.connect(database)) as connection:
        assert [row[0] for row in connection.execute("SELECT name FROM sqlite_master")] == ["items"]


@pytest.mark.parametrize("name", ["predict", "demo", "report"])
def test_a_reader_finds_nothing_in_an_empty_database_and_creates_no_tables(tmp_path, capsys, name):
    database = tmp_path / "empty.db"
    sqlite3.connect(database).close()
    code = _command(name, tmp_path)(f"sqlite:///{database}")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: no MLflow store in {database} (an empty database)"), err
    with closing(sqlite3.connect(database)) as connection:
        assert list(connection.execute("SELECT name FROM sqlite_master")) == []
