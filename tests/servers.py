"""Real servers for the cluster test, started from their own binaries on this machine: PostgreSQL,
an MLflow tracking server on it that serves the artifacts, and a multi-node Ray cluster started with
``ray start`` and token auth, as docker/compose.yaml runs them.

Each is a context manager that stops what it started, and only that: every file and process lives
under a folder of the caller's (``root``), so killing whatever names it in its command line or
environment catches the stragglers without touching other servers on the machine (``ray stop``
would stop every Ray cluster here).
"""

from __future__ import annotations

import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's `ray` and `mlflow`
START_TIMEOUT_S = 240.0  # generous: this 2-core machine may be running other Ray tests at once
RAY_PORTS_PER_NODE = 6  # node manager, object manager, agent (HTTP, gRPC), runtime-env agent, metrics
WORKER_PORTS = 100  # one per Ray worker process of a node; a test's nodes need a few dozen


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (the newest major installed), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1 right now (held together while chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_range(size: int) -> tuple[int, int]:
    """A block of consecutive free ports below Linux's ephemeral range (32768 up), so that other
    programs' outgoing connections do not land in it later."""
    for _ in range(200):
        first = random.randrange(20000, 32768 - size)
        if all(_is_free(port) for port in range(first, first + size)):
            return first, first + size - 1
    raise RuntimeError(f"no {size} consecutive free ports between 20000 and 32767")


def _is_free(port: int) -> bool:
    with closing(socket.socket()) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def wait_for(ready: Callable[[], bool], what: str, timeout_s: float = START_TIMEOUT_S,
             alive: Callable[[], bool] = lambda: True, log: Path | None = None) -> None:
    """Poll until ``ready()``; fail with the log's tail if time runs out or the process died."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not alive() or time.monotonic() > deadline:
            tail = _tail(log)
            state = "exited" if not alive() else f"not ready after {timeout_s:g} s"
            raise RuntimeError(f"{what} {state}\n{tail}")
        time.sleep(0.5)


def _tail(log: Path | None) -> str:
    """The end of a server's log, if it wrote one."""
    return log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""


def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def kill_under(root: Path) -> None:
    """SIGKILL every process whose command line or environment names a path under ``root``: Ray's
    workers rename themselves (``ray::…``), so only the environment their node gave them
    (``RAY_TMPDIR``) still says where they belong."""
    subprocess.run(["pkill", "-9", "-f", f"{root}/"], capture_output=True)
    marker = f"={root}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes() and int(environ.parent.name) != os.getpid():
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except (OSError, ValueError):  # gone meanwhile, or not ours to read
            continue


@dataclass(frozen=True)
class Database:
    uri: str  # what MLflow connects with (SQLAlchemy: postgresql+psycopg2://user:password@host:port/db)
    admin_dsn: str  # a libpq connection string for the test's own queries


@contextmanager
def postgres(root: Path) -> Iterator[Database]:
    """A PostgreSQL server on 127.0.0.1 (a free port; its socket in ``root``), password auth
    (SCRAM) for everyone, and a database ``mlflow`` owned by the password-authenticated role
    ``mlflow``. PostgreSQL refuses to run as root: as root it runs as the ``postgres`` user."""
    import psycopg2

    pg = postgres_bin()
    if pg is None:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    as_owner: list[str] = []
    root.mkdir(parents=True)
    if os.geteuid() == 0:
        as_owner = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    admin_password, password = secrets.token_hex(16), secrets.token_hex(16)
    password_file = root / "admin-password"
    password_file.write_text(admin_password)
    if as_owner:
        shutil.chown(password_file, "postgres", "postgres")
    _run([*as_owner, str(pg / "initdb"), "-D", str(data), "-U", "admin", f"--pwfile={password_file}",
          "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"], "initdb")
    password_file.unlink()
    (port,) = free_ports(1)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\n")
    pg_ctl = [*as_owner, str(pg / "pg_ctl"), "-D", str(data)]
    _run([*pg_ctl, "-l", str(log), "-w", "-t", str(int(START_TIMEOUT_S)), "start"], "pg_ctl start", log)
    try:
        admin_dsn = f"host=127.0.0.1 port={port} user=admin password={admin_password} dbname=postgres"
        with closing(psycopg2.connect(admin_dsn)) as connection:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE ROLE mlflow LOGIN PASSWORD '{password}'")
                cursor.execute("CREATE DATABASE mlflow OWNER mlflow")
        yield Database(f"postgresql+psycopg2://mlflow:{password}@127.0.0.1:{port}/mlflow",
                       admin_dsn.replace("dbname=postgres", "dbname=mlflow"))
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)


def _run(command: list[str], what: str, log: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a start-up command; fail with its output (and the server's log) if it fails."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S + 10)
    if done.returncode != 0:
        tail = _tail(log)
        raise RuntimeError(f"{what} failed ({done.returncode}):\n"
                           f"{(done.stdout + done.stderr)[-3000:]}\n{tail}")


@dataclass
class Server:
    """A started server process (its own process group) and where to reach it."""

    url: str
    process: subprocess.Popen
    log: Path

    def wait_ready(self, path: str) -> None:
        wait_for(lambda: http_ok(f"{self.url}{path}"), f"server {self.url}",
                 alive=lambda: self.process.poll() is None, log=self.log)


@contextmanager
def mlflow_server(root: Path, backend_uri: str) -> Iterator[Server]:
    """``mlflow server`` on 127.0.0.1 with ``backend_uri`` as its store, serving the artifacts
    (kept in ``root/artifacts``) itself, one worker. Yields at once: call ``wait_ready("/health")``
    (start-up creates the schema, about 25 s here, so the caller can start other things first).
    The database URI goes in the environment, as docker/compose.yaml passes it: no password on a
    command line."""
    root.mkdir(parents=True)
    (port,) = free_ports(1)
    log = root / "server.log"
    command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--serve-artifacts", "--artifacts-destination", str(root / "artifacts")]
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": backend_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield Server(f"http://127.0.0.1:{port}", process, log)
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after a short grace: on a PostgreSQL store the MLflow server took
    longer than 5 s to stop here, and a test's server has nothing left to save."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class RayCluster:
    """A Ray cluster of ``ray start`` nodes on this machine, in one temp dir, with its own token."""

    temp_dir: Path
    token: str
    gcs_port: int
    dashboard_url: str
    env: dict[str, str]  # for any process that talks to the cluster (ray CLI, a driver)
    node_ids: list[str] = field(default_factory=list)  # in start order: head first

    @property
    def gcs_address(self) -> str:
        """``ip:port`` of the GCS, with the IP the nodes registered under (``ray start`` replaces
        a loopback ``--node-ip-address`` with this host's routable one)."""
        return f"{self.api('/api/v0/nodes')['result']['result'][0]['node_ip']}:{self.gcs_port}"

    def api(self, path: str) -> dict:
        """GET a dashboard endpoint with the token, parsed."""
        request = urllib.request.Request(f"{self.dashboard_url}{path}",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response)
        return data.get("data", data)

    def start_node(self, num_cpus: int, head: bool = False, wrapper: tuple[str, ...] = ()) -> str:
        """``ray start`` one more node (``wrapper``: a command that runs ``ray start``, e.g. in
        another mount namespace) with free ports of its own; returns its node id."""
        ports = free_ports(RAY_PORTS_PER_NODE)
        low, high = free_port_range(WORKER_PORTS)
        command = [str(BIN / "ray"), "start", f"--num-cpus={num_cpus}", "--disable-usage-stats",
                   "--object-store-memory=100000000",  # 100 MB: trials pass little through it
                   f"--node-manager-port={ports[0]}", f"--object-manager-port={ports[1]}",
                   f"--dashboard-agent-listen-port={ports[2]}", f"--dashboard-agent-grpc-port={ports[3]}",
                   f"--runtime-env-agent-port={ports[4]}", f"--metrics-export-port={ports[5]}",
                   f"--min-worker-port={low}", f"--max-worker-port={high}"]
        if head:
            dashboard_port, client_port = free_ports(2)
            command += ["--head", f"--port={self.gcs_port}", "--dashboard-host=127.0.0.1",
                        f"--dashboard-port={dashboard_port}", f"--ray-client-server-port={client_port}"]
            self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        else:
            command += [f"--address=127.0.0.1:{self.gcs_port}"]
        before = set(self.node_ids)
        _run([*wrapper, *command], "ray start", env=self.env)
        if head:
            wait_for(lambda: http_ok(f"{self.dashboard_url}/api/gcs_healthz"), "Ray dashboard")
        wait_for(lambda: len(self._alive()) == len(before) + 1, "Ray node registration")
        (new,) = set(self._alive()) - before
        self.node_ids.append(new)
        return new

    def _alive(self) -> list[str]:
        nodes = self.api("/api/v0/nodes?detail=false")["result"]["result"]
        return [n["node_id"] for n in nodes if n["state"] == "ALIVE"]


@contextmanager
def ray_cluster(root: Path, cpus: list[int], env: dict[str, str] | None = None) -> Iterator[RayCluster]:
    """A head and ``len(cpus) - 1`` worker nodes, ``cpus[i]`` CPUs each. ``root`` must be short:
    Ray's socket paths live under it. Token auth with a fresh token, given to every node in the
    environment as docker/compose.yaml does (nothing is written to ~/.ray). The dashboard listens
    on 127.0.0.1 only; the GCS and the raylets listen on every interface, as Ray 2.60 always has
    them, and the token guards them."""
    temp_dir = root / "r"
    temp_dir.mkdir(parents=True)
    token = secrets.token_hex(32)
    node_env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    node_env.update({"RAY_TMPDIR": str(temp_dir), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
                     "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})
    (gcs_port,) = free_ports(1)
    cluster = RayCluster(temp_dir, token, gcs_port, "", node_env)
    try:
        cluster.start_node(cpus[0], head=True)
        for count in cpus[1:]:
            cluster.start_node(count)
        yield cluster
    finally:
        kill_under(temp_dir)
