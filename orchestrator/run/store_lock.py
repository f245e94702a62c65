"""One sweep at a time on a storage folder: an exclusive OS lock on ``<storage>/.sweep.lock``.

Why: a trial's finished folder, its checkpoints and its MLflow run are found by its content key,
and the keys live under ``--storage``. Two sweeps that train on one storage at once (the same
space started twice, or two spaces that share trials, e.g. two sweeps that both need the MiniLM
teacher) would each see the trial as not done, both train it, and log it twice (two MLflow runs
with the same ``trial_key``, its registered model at version 2). So a sweep that will train takes
this lock after its checks and before Ray starts, and holds it until it ends; a second sweep on the
same storage is refused in one line naming the running one (pid, host, start time, space), exit
code 2, before it writes anything. ``--dry-run`` trains nothing and takes no lock.

The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on an open file, so the kernel releases it when the
holder's process ends in any way, ``kill -9`` and a lost machine's reboot included: there is no
stale lock and nothing to clean up. The file stays (removing it would let two sweeps lock two
different files); what is written in it, the holder's pid, host, start time and command, is only
read to name the holder in the refusal. Its file descriptor is not inherited by the processes the
sweep starts (Python's default), so the lock ends with the sweep's own process.

What it covers, and what it does not:

- Sweeps on one storage folder, on one machine: always.
- On a cluster, every driver uses the one shared ``--storage``. Linux's NFS client (v4, and v3
  with the NLM lock manager running) turns ``flock`` into a byte-range lock that the server
  enforces between machines, so two drivers on two hosts are refused too. Some shared filesystems
  do not (some FUSE mounts and object-store mounts: ``flock`` there either fails, which the sweep
  reports in one line, or only locks on the local machine); on those, do not start two sweeps
  on one storage yourself.
- A driver SIGKILLed alone (not its Ray's processes) frees the lock at once, while its local Ray's
  workers can go on for a while and finish the trial they train (``tests/orchestrator/
  test_sweep_faults.py`` notes it); a sweep started in that window may train that trial beside
  them. Ctrl-C leaves no such window (the sweep shuts its Ray down before it lets the lock go),
  nor does a lost machine.
- Two sweeps on *different* storage folders are not stopped, even if they log to the same MLflow
  store: each has its own finished trials, so a trial they share is trained in both and logged
  twice in the experiment they share. Give sweeps that share an MLflow store one storage.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from trainers.errors import UserError

LOCK_NAME = ".sweep.lock"
READ_WAIT_S = 1.0  # a holder writes its details right after locking: a refusal waits that long for them


class StorageBusy(UserError):
    """Another sweep holds the storage's lock."""


def lock_path(storage: Path) -> Path:
    return storage / LOCK_NAME


def holder_details(space: str | Path | None = None, command: str | None = None) -> dict[str, object]:
    """What the holder writes in the lock file: who it is, since when, running what (``command``
    as the caller gives it: the sweep's, with the passwords of its URIs masked)."""
    return {"pid": os.getpid(), "host": platform.node() or "?",
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "space": str(space) if space is not None else None, "command": command}


@contextmanager
def storage_lock(storage: Path, space: str | Path | None = None, command: str | None = None
                 ) -> Iterator[Path]:
    """Hold ``storage``'s lock for the body, or raise :class:`StorageBusy` naming the holder (or
    :class:`UserError` where the filesystem has no locks). ``storage`` must exist. Yields the lock
    file's path."""
    path = lock_path(storage)
    fd = acquire(path, space, command)
    try:
        yield path
    finally:
        release(fd)


def acquire(path: Path, space: str | Path | None = None, command: str | None = None) -> int:
    """Lock ``path`` (created if missing) and write this process's details in it; the open file
    descriptor that holds the lock. See :func:`storage_lock`."""
    storage = path.parent
    try:
        # Never O_TRUNC: the file may be another sweep's, holding its details. Read-write, as
        # NFS's emulation of flock with byte-range locks needs a file open for writing.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UserError(f"--storage {storage}: cannot open its lock file {path.name} "
                        f"({error.strerror}); pass --storage with a writable folder") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            details = _read_details(fd)
            os.close(fd)
            raise StorageBusy(f"--storage {storage}: another sweep is running on it ({describe(details)}); "
                              "wait for it to finish, or give this sweep another --storage") from None
        os.close(fd)
        raise UserError(f"--storage {storage}: its filesystem cannot lock {path.name} "
                        f"({error.strerror}), so two sweeps on it could train the same trial; "
                        "pass --storage on a filesystem with locks (local disk, NFS)") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder_details(space, command)) + "\n").encode(), 0)
        os.fsync(fd)
    except OSError:
        pass  # the lock is what matters; a refused sweep then names the holder less precisely
    return fd


def release(fd: int) -> None:
    """Unlock (closing the descriptor does it). The details are cleared first, while still held,
    so that they never outlive the sweep they name nor clear another's."""
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass
    os.close(fd)


def describe(details: dict[str, object] | None) -> str:
    """``pid 1234 on host h, started 2026-12-06T10:20:01Z, space search_spaces/smoke.yaml``."""
    if not details:
        return "its details are not written in the lock file"
    text = (f"pid {details.get('pid', '?')} on host {details.get('host', '?')}, "
            f"started {details.get('started', '?')}")
    if details.get("space"):
        text += f", space {details['space']}"
    return text


def _read_details(fd: int) -> dict[str, object] | None:
    """The holder's details; it writes them just after locking, so an empty file is waited on."""
    deadline = time.monotonic() + READ_WAIT_S
    while True:
        try:
            raw = os.pread(fd, 4096, 0)
        except OSError:
            return None
        if raw.strip():
            try:
                details = json.loads(raw.decode(errors="replace").splitlines()[0])
            except (json.JSONDecodeError, IndexError):
                return None
            return details if isinstance(details, dict) else None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
