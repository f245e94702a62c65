"""Talking to an MLflow tracking store: the plumbing every command shares.

- :func:`add_tracking_uri_option`: the one ``--tracking-uri`` option; its default is
  ``$MLFLOW_TRACKING_URI``, else the SQLite store in ``results/`` (``paths.DEFAULT_TRACKING_URI``);
- :func:`redact`: a URI as it may be printed or committed (never its password);
- :func:`check_store`: fail fast, in one line, when the store cannot be used: before the sweep
  starts Ray, before the report, predict or the demo read it;
- :func:`store_errors`: an error the store answers with, later (a server's 500, a SQLite file that
  is not a database), as one line too, in every command;
- :func:`search_all`, :func:`sweep_names`, :func:`parent_run`: MLflow's searches return pages
  (1,000 runs or experiments at most); these read every page;
- :func:`no_progress_bars`: MLflow draws a bar per downloaded artifact.

What a trial's run holds (its epochs, its artifacts) is written by ``trainers/record/run_log.py``, which
the workers and the driver share (``trainers/`` never imports ``orchestrator/``).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.paths import DEFAULT_TRACKING_URI
from orchestrator.tracking.names import SWEEP_RUN_KIND
from trainers.errors import UserError

PAGE_SIZE = 1000  # MLflow's cap on one page of runs or experiments
HEALTH_TIMEOUT_S = 5.0
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # what MLflow itself reads


class TrackingError(UserError):
    """The tracking store cannot be used; one line naming the URI and the fix."""


def add_tracking_uri_option(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri``, defaulting as MLflow does to ``$MLFLOW_TRACKING_URI`` (read when the
    parser is built), else the project's SQLite store."""
    parser.add_argument("--tracking-uri", default=os.environ.get(TRACKING_URI_ENV, DEFAULT_TRACKING_URI),
                        help=f"MLflow tracking URI (default: ${TRACKING_URI_ENV}, else the SQLite "
                             "store in results/)")


def redact(uri: str, *, keep_user: bool = True) -> str:
    """``http://user:secret@host`` → ``http://user:***@host``: URIs are printed, secrets are not.

    ``keep_user=False`` drops the whole user part (``http://host``), for what is committed (a
    report's README): a token is often written as the user name, with no password.
    """
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    if not keep_user:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri


def check_store(uri: str, *, create: bool, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """Raise :class:`TrackingError` unless the store at ``uri`` can be used.

    ``create=True`` (the sweep, which fills the store): a SQLite file is created if missing, and
    only the schemes its workers can log to are taken. ``create=False`` (report, predict, demo,
    which only read): a missing SQLite file or file store is an error, and is not created, as
    MLflow would create an empty one where the user mistyped a path; other schemes are left to
    MLflow. A SQLite file must be a database. A server must answer its ``/health``
    (unauthenticated, also on a basic-auth server) within ``timeout_s``, instead of MLflow
    retrying for minutes.
    """
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        _check_server(uri, timeout_s)
    elif scheme == "sqlite":
        database = Path(uri.removeprefix("sqlite:///"))
        if not create and not database.is_file():
            raise TrackingError(f"no MLflow database at {database}; run a sweep first "
                                f"(python -m orchestrator.sweep --name NAME) or pass --tracking-uri")
        _open_sqlite(uri, database, create)
    elif scheme in ("file", ""):
        folder = Path(uri.removeprefix("file://").removeprefix("file:"))
        if not create and not folder.is_dir():
            raise TrackingError(f"no MLflow file store at {folder}")
    elif create:
        raise TrackingError(f"tracking URI {redact(uri)}: unsupported scheme '{scheme}'; use "
                            "sqlite:///path.db or http://host:port")


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """Turn an error of the store at ``uri`` into a :class:`TrackingError` naming it, which every
    command prints in one line (exit 2) instead of MLflow's traceback. SQLAlchemy's own errors
    pass through MLflow unwrapped: a SQLite file of another kind fails as one when it is opened."""
    try:
        yield
    except (MlflowException, SQLAlchemyError) as error:
        raise _store_error(uri, error) from None


def _store_error(uri: str, error: Exception) -> TrackingError:
    said = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = said[0] if said else type(error).__name__
    password = urlsplit(uri).password
    if password:  # a server's error may quote the URI it was asked at
        line = line.replace(password, "***")
    return TrackingError(f"MLflow store {redact(uri)}: {line}; repair the store or pass another "
                         "--tracking-uri")


def _check_server(uri: str, timeout_s: float) -> None:
    parts = urlsplit(uri)
    # /health needs no login: the credentials stay out of the request (and of any error).
    host = parts.netloc.rsplit("@", 1)[-1]
    health = urlunsplit((parts.scheme, host, f"{parts.path.rstrip('/')}/health", "", ""))
    try:
        urllib.request.urlopen(health, timeout=timeout_s).close()
    except OSError as error:  # URLError (HTTPError too), a timeout, a refused connection
        reason = getattr(error, "reason", error)
        raise TrackingError(f"cannot reach tracking URI {redact(uri)}: its /health is unreachable "
                            f"({reason}); start the MLflow server or pass --tracking-uri") from None


def _open_sqlite(uri: str, database: Path, create: bool) -> None:
    """Open the file (the sweep's is created here) and read its tables: a file that is not a
    SQLite database fails as the store's error, before MLflow opens it in SQLAlchemy. A database
    of something else (tables, none of them MLflow's ``experiments``) is refused too: MLflow would
    add its tables to it, even for a command that only reads. An empty one is a store to be for
    the sweep, and nothing to read for the others."""
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(database)) as connection:
            listed = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {row[0] for row in listed}
    except (OSError, sqlite3.OperationalError) as error:
        raise TrackingError(f"tracking URI {uri}: cannot open the SQLite store ({error}); "
                            "pass --tracking-uri with a writable path") from None
    except sqlite3.DatabaseError as error:
        raise _store_error(uri, error) from None
    if tables and "experiments" not in tables:
        raise TrackingError(f"tracking URI {uri}: {database} is a SQLite database but not an MLflow store "
                            f"(its tables: {', '.join(sorted(tables)[:5])}); pass the --tracking-uri of a "
                            "sweep's store, or a new file for a new one")
    if not tables and not create:
        raise TrackingError(f"no MLflow store in {database} (an empty database); run a sweep first "
                            "(python -m orchestrator.sweep --name NAME) or pass --tracking-uri")


def search_all(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    """Every run of the experiment that matches, page after page, in MLflow's order (the latest
    started first)."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=PAGE_SIZE,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def sweep_names(client: MlflowClient) -> list[str]:
    """Names of the sweep experiments (one experiment per sweep; MLflow's own Default excluded)."""
    names: list[str] = []
    token = None
    while True:
        page = client.search_experiments(max_results=PAGE_SIZE, page_token=token)
        names.extend(e.name for e in page if e.name != "Default")
        token = page.token
        if not token:
            return sorted(names)


def parent_run(client: MlflowClient, experiment_id: str) -> Run | None:
    """The sweep's own run (tag ``kind`` = ``sweep``; ``orchestrator.tracking.runs`` creates one per
    experiment), the latest started if there were ever several."""
    found = client.search_runs([experiment_id], f"tags.kind = '{SWEEP_RUN_KIND}'", max_results=1,
                               order_by=["attributes.start_time DESC"])
    return found[0] if found else None


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """MLflow draws a progress bar per downloaded artifact: dozens of them in a sweep's log."""
    variable = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(variable)
    os.environ[variable] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous
