"""The real sweep the tests run: the e2e space through ``python -m orchestrator.sweep``, as a user
runs it (its own process group, Ray in its own temp dir, a SQLite MLflow store)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.paths import PROJECT_ROOT

# Three trials in two stages, every stage and improvement once (fine-tuned teacher and student;
# MetaDistil with noise and a warm start): about 2.5 minutes on 2 cores.
E2E_SPACE = {
    "name": "e2e",
    "seeds": [0],
    "data": {"train_size": 400, "quiz_size": 20, "test_size": 100, "max_length": 32},
    "train": {"epochs": 2, "lr": 5.0e-4, "teacher_lr": 1.0e-4, "pilot_lr": 5.0e-4, "batch_size": 32},
    "grid": [{"methods": ["finetune"], "students": ["tinybert"]},
             {"methods": ["metadistil"], "teachers": [["bert"]], "students": ["tinybert"],
              "noise_p": [0.1], "warmup_epochs": [1]}],
}
TIMEOUT_S = 900  # generous: a sweep of 7 trials takes about 3 min alone, over 10 beside another sweep


@dataclass(frozen=True)
class Sweep:
    """A finished e2e sweep: its folder (space.yaml, store/, mlflow.db, report/) and first run."""

    workdir: Path
    first: subprocess.CompletedProcess
    actors: tuple[str, ...]  # the class of every Ray actor the first run started, once per actor

    @property
    def tracking_uri(self) -> str:
        return tracking_uri(self.workdir)


def tracking_uri(workdir: Path) -> str:
    """The SQLite MLflow store of a sweep run in ``workdir``."""
    return f"sqlite:///{workdir / 'mlflow.db'}"


def kill_session(leader: int, ray_tmp: str) -> None:
    """SIGKILL everything a command started in its own session, Ray included. Ray's workers run in
    process groups of their own and rename themselves (``ray::…``), so neither ``killpg`` nor
    ``pkill -f`` finds them; they stay in the session. ``ray stop`` is never an option: it would
    also stop clusters that are not the test's."""
    subprocess.run(["pkill", "-9", "-s", str(leader)], capture_output=True)
    subprocess.run(["pkill", "-9", "-f", ray_tmp], capture_output=True)
    shutil.rmtree(ray_tmp, ignore_errors=True)  # Ray's logs of the run: megabytes each, never read again


def start_module(*args: str, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT
                 ) -> tuple[subprocess.Popen, str]:
    """``python -m <args>`` as a user starts it from ``cwd`` (the project's folder, or a copy's), in
    its own session (so that ``kill_session`` finds all it starts) with Ray in its own short temp
    dir; stdout and stderr in one pipe. Returns the process and that temp dir."""
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    full_env = {**os.environ, "RAY_TMPDIR": ray_tmp, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=full_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    return process, ray_tmp


def sweep_args(workdir: Path, *extra: str) -> list[str]:
    """The sweep on ``workdir``'s space, storage and SQLite store."""
    return ["orchestrator.sweep", "--space", str(workdir / "space.yaml"), "--storage", str(workdir / "store"),
            "--tracking-uri", tracking_uri(workdir), *extra]


def read_output(process: subprocess.Popen) -> tuple[threading.Thread, list[str]]:
    """Read ``process``'s output all along in a thread (a full pipe would block the process); the
    list grows line by line."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    return reader, lines


def run_sweep(workdir: Path, *extra: str, env: dict[str, str] | None = None
              ) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``python -m orchestrator.sweep`` to its end (report in ``workdir/report``), and the class of
    every actor its Ray started."""
    process, ray_tmp = start_module(*sweep_args(workdir, "--report-dir", str(workdir / "report"), *extra),
                                    env=env)
    try:
        out, _ = process.communicate(timeout=TIMEOUT_S)
        actors = started_actors(ray_tmp)
    finally:
        kill_session(process.pid, ray_tmp)
    return subprocess.CompletedProcess(process.args, process.returncode, out, ""), actors


def started_actors(ray_tmp: str) -> list[str]:
    """Ray names each actor's class in the first lines of its worker's log."""
    names = []
    for log in Path(ray_tmp).glob("**/logs/**/worker-*.out"):
        with log.open(errors="replace") as handle:
            names += re.findall(r":actor_name:(\w+)", handle.read(4096))[:1]
    return names


def run_e2e_sweep(workdir: Path) -> Sweep:
    (workdir / "space.yaml").write_text(yaml.safe_dump(E2E_SPACE))
    first, actors = run_sweep(workdir)
    assert first.returncode == 0, first.stdout[-4000:]
    return Sweep(workdir, first, tuple(actors))
