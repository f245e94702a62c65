"""One sweep at a time on a storage (``orchestrator/run/store_lock.py``): a second one is refused in one
line naming the running one (pid, host, start, space), before it writes anything; the lock ends
with its holder, ``kill -9`` included. The holder is a small process that takes the lock through
the module, as the sweep does, so no test here starts Ray or trains."""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from orchestrator import sweep
from orchestrator.run import store_lock
from orchestrator.run.store_lock import StorageBusy, storage_lock
from tests.conftest import ROOT
from trainers.errors import UserError

# Takes the lock and holds it until its stdin gets a line or closes (then leaves the lock's body).
HOLDER = """
import sys
from pathlib import Path
from orchestrator.run.store_lock import storage_lock
with storage_lock(Path(sys.argv[1]), sys.argv[2], "python -m orchestrator.sweep --space held"):
    print("locked", flush=True)
    sys.stdin.readline()
"""
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def hold() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a process that holds a storage's lock; every one is SIGKILLed at the end."""
    started: list[subprocess.Popen] = []

    def start(storage: Path, space: str = "search_spaces/held.yaml") -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(storage), space], cwd=ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def refusal(storage: Path, pid: int, space: str = "search_spaces/held.yaml") -> str:
    return (rf"--storage {re.escape(str(storage))}: another sweep is running on it \(pid {pid} on host "
            rf"{re.escape(platform.node())}, started ({STAMP}), space {re.escape(space)}\); wait for it "
            r"to finish, or give this sweep another --storage")


def test_a_second_lock_is_refused_naming_the_holder_and_taken_once_it_exits(tmp_path, hold):
    holder = hold(tmp_path)
    with pytest.raises(StorageBusy) as refused, storage_lock(tmp_path):
        pass
    found = re.fullmatch(refusal(tmp_path, holder.pid), str(refused.value))
    assert found, str(refused.value)
    started = datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - started).total_seconds()) < 120
    details = json.loads(store_lock.lock_path(tmp_path).read_text())
    assert details["pid"] == holder.pid and details["command"].endswith("--space held")  # left alone

    holder.stdin.close()  # the holder leaves its lock's body and exits
    assert holder.wait(timeout=30) == 0
    assert store_lock.lock_path(tmp_path).read_text() == ""  # its details went with it
    with storage_lock(tmp_path, "mine.yaml") as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_the_lock_of_a_holder_killed_with_sigkill_is_free(tmp_path, hold):
    holder = hold(tmp_path)
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    assert json.loads(store_lock.lock_path(tmp_path).read_text())["pid"] == holder.pid  # left behind
    with storage_lock(tmp_path, "mine.yaml") as path:  # no stale lock: nothing to clean up
        details = json.loads(path.read_text())
        assert details["pid"] == os.getpid() and details["space"] == "mine.yaml"
        assert details["host"] == platform.node() and re.fullmatch(STAMP, details["started"])


def test_one_process_cannot_take_a_lock_twice_and_releases_it_on_an_exception(tmp_path):
    """flock's lock belongs to the open file: a second open in the same process is refused too,
    so in-process callers (the tests' ``sweep.main``) depend on the release at the body's end."""
    with pytest.raises(RuntimeError), storage_lock(tmp_path, "a.yaml"):
        with pytest.raises(StorageBusy, match=rf"\(pid {os.getpid()} .*, space a\.yaml\)"), \
                storage_lock(tmp_path, "b.yaml"):
            pass
        raise RuntimeError("the sweep failed")
    with storage_lock(tmp_path, "b.yaml"):
        pass


def test_a_filesystem_without_locks_is_refused_in_one_line(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(store_lock.fcntl, "flock", no_locks)
    with pytest.raises(UserError) as refused, storage_lock(tmp_path):
        pass
    assert not isinstance(refused.value, StorageBusy)
    assert str(refused.value).startswith(f"--storage {tmp_path}: its filesystem cannot lock .sweep.lock (")
    assert "\n" not in str(refused.value)


def test_the_sweep_command_is_refused_while_another_holds_the_storage(tmp_path, hold, capsys):
    """Through the real CLI: refused in one line, exit 2, nothing written (no tracking store, the
    storage as it was); once the holder is SIGKILLed, the same command gets past the lock (here to
    ``--resume``'s check, which finds no such sweep: nothing trains)."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": "locked", "seeds": [0], "data": {"train_size": 200, "quiz_size": 20, "test_size": 50},
        "train": {"epochs": 1}, "grid": [{"methods": ["finetune"], "students": ["distilbert"]}]}))
    storage, database = tmp_path / "store", tmp_path / "mlflow.db"
    storage.mkdir()
    holder = hold(storage)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in storage.iterdir()}
    command = [sys.executable, "-m", "orchestrator.sweep", "--space", str(space), "--storage", str(storage),
               "--tracking-uri", f"sqlite:///{database}", "--resume"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and refused.stdout == "", refused.stdout + refused.stderr
    assert re.fullmatch(f"error: {refusal(storage, holder.pid)}\n", refused.stderr), refused.stderr
    assert not database.exists()
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in storage.iterdir()} == before

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    # The same command again, through its main in this process (a second process: ~10 s of imports).
    code = sweep.main(command[3:])
    err = capsys.readouterr().err
    assert code == 2 and "another sweep is running" not in err, err
    assert "error: --resume: no sweep 'locked' in sqlite:///" in err and database.exists()
    assert store_lock.lock_path(storage).read_text() == ""  # it held the lock, then let it go
