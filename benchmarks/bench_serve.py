"""The demo under load: requests/s and latency of ``POST /predict`` with concurrent clients, over
HTTP, before (another git revision's demo: by default f6059b9, the last one that answered a request
at a time) and after (this tree's).

    python benchmarks/bench_serve.py [--tracking-uri sqlite:///results/mlflow.db] [--sweep smoke]
                                     [--baseline main] [--clients 8] [--requests 200] [--rounds 2]

Both demos are started as a user starts them (``python -m orchestrator.serve.demo``, or
``orchestrator.demo`` in a revision before the packages were regrouped), each with its own Ray on
loopback and its own port, on the same store and sweep (``make sweep`` makes the default one), the
baseline from ``git archive <baseline>`` unpacked in a temporary folder and run from there. Once
both have printed their address, each round drives one demo, then the other (so that
another process's load on this shared machine falls on both alike; the idle one's Ray stays up):
``--clients`` threads, each with its own keep-alive HTTP connection as a browser holds one, send
``--requests`` requests in all, back to back, each one sentence of the task's validation split (its
pair, for a pair task) in the file's order, from ``$METADISTIL_DATA`` (or ``--data``). Before the
timed requests, every client sends two untimed ones (the first batches and the first forward
passes pay one-off costs). A request counts as answered when it gets HTTP 200 and an answer for
every row; its latency is from sending the request to reading the whole answer; requests/s is the
answered requests ÷ the round's wall time; p50 and p95 are over every request of every round
(``numpy.percentile``, linear). After the rounds, each demo is sent the bad requests the demo must
refuse (empty text, 5 MB of text, wrong types, broken JSON) and their HTTP statuses are printed.
Where the time goes is printed as CPU time a request (user + system, from ``/proc``, over the timed
rounds): the Serve replica's, Serve's HTTP proxy's, the rest of the demo's processes', and the
clients' (this process): unlike wall time, it hardly depends on what else the machine runs.

Everything is bounded: each request by ``--request-timeout-s``, the whole run by ``--timeout-s``
(the demos and their Ray are killed at the end, whatever happened). Exit code 0 when every request
of every round was answered and every bad request got a 4xx, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.paths import DEFAULT_TRACKING_URI  # noqa: E402
from tests.servers import free_ports, wait_for  # noqa: E402
from tests.sweeps import kill_session, read_output, start_module  # noqa: E402
from trainers.data.glue import read_tsv  # noqa: E402
from trainers.data.source import offline_folder  # noqa: E402
from trainers.data.tasks import get  # noqa: E402

START_TIMEOUT_S = 300  # two Rays and two replicas of 8 models each, on 2 busy cores
WARMUP_PER_CLIENT = 2
FIVE_MB = 5 * 1024 * 1024
BAD_REQUESTS = {  # what the demo must refuse with a 4xx, as the bytes a client would send
    "empty text": json.dumps({"text": "  "}).encode(),
    "5 MB of text": json.dumps({"text": "a" * FIVE_MB}).encode(),
    "wrong types": json.dumps({"text": ["NLP", "is", "fun"], "second": 3}).encode(),
    "broken JSON": b'{"text": "NLP is fun.',
}


@dataclass
class Demo:
    name: str
    process: subprocess.Popen
    ray_tmp: str
    port: int
    output: list[str]
    latencies: list[float] = field(default_factory=list)
    rounds: list[tuple[int, int, float]] = field(default_factory=list)  # answered, sent, wall seconds
    batches: list[int] = field(default_factory=list)  # the batch each answer says it came in, if any
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of the timed rounds, by process
    refused: dict[str, int] = field(default_factory=dict)


def start(name: str, cwd: Path, args: argparse.Namespace) -> Demo:
    """The demo of the tree in ``cwd`` run from there (its ``orchestrator`` package first on the
    path, Ray's workers included) on a free loopback port."""
    (port,) = free_ports(1)
    regrouped = (cwd / "orchestrator" / "serve" / "demo.py").is_file()
    module = "orchestrator.serve.demo" if regrouped else "orchestrator.demo"
    process, ray_tmp = start_module(module, "--tracking-uri", args.tracking_uri,
                                    *(["--sweep", args.sweep] if args.sweep else []), "--port", str(port),
                                    env={"PYTHONPATH": str(cwd)}, cwd=cwd)
    _, output = read_output(process)
    return Demo(name, process, ray_tmp, port, output)


def wait_started(demo: Demo, deadline: float) -> None:
    url = f"open http://127.0.0.1:{demo.port}/"
    try:
        wait_for(lambda: url in "".join(demo.output), f"the {demo.name} demo",
                 max(1.0, deadline - time.monotonic()), alive=lambda: demo.process.poll() is None)
    except RuntimeError as error:
        raise RuntimeError(f"{error}\n{''.join(demo.output)[-3000:]}") from None


def cpu_seconds(demo: Demo) -> dict[str, float]:
    """CPU seconds (user + system) so far of each of the demo's processes, summed by kind: its Serve
    replica, Serve's HTTP proxy, and the rest (the demo's own process, Ray's GCS, raylet,
    dashboard, Serve's controller). Ray's workers stay in the demo's session."""
    found = subprocess.run(["pgrep", "-s", str(demo.process.pid)], capture_output=True, text=True).stdout
    ticks = os.sysconf("SC_CLK_TCK")
    total: dict[str, float] = {}
    for pid in found.split():
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        kind = "replica" if "ServeReplica" in name else "proxy" if "ProxyActor" in name else "rest"
        total[kind] = total.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return total


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def answered(status: int, data: bytes, rows: int | None) -> tuple[bool, int | None]:
    """Whether a response is a full answer (every row, when ``rows`` is known), and its batch."""
    if status != 200:
        return False, None
    body = json.loads(data)
    return rows is None or len(body.get("answers", [])) == rows, body.get("batch")


def drive(demo: Demo, bodies: list[bytes], clients: int, rows: int | None, timeout_s: float,
          deadline: float) -> None:
    """Send ``bodies`` from ``clients`` threads at once, back to back; record each answer's latency."""
    pending = list(enumerate(bodies))
    lock = threading.Lock()
    results: list[tuple[bool, float, int | None]] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=timeout_s)
        while time.monotonic() < deadline:
            with lock:
                if not pending:
                    break
                _, body = pending.pop(0)
            started = time.perf_counter()
            try:
                ok, batch = answered(*post(connection, body), rows)
            except (OSError, http.client.HTTPException, ValueError):
                connection.close()  # reopened by the next request
                ok, batch = False, None
            with lock:
                results.append((ok, time.perf_counter() - started, batch))
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    cpu_before, own_before = cpu_seconds(demo), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + timeout_s)
    wall = time.perf_counter() - started
    cpu_after = cpu_seconds(demo)
    for kind in cpu_after:
        demo.cpu[kind] = demo.cpu.get(kind, 0.0) + cpu_after[kind] - cpu_before.get(kind, 0.0)
    demo.cpu["clients"] = demo.cpu.get("clients", 0.0) + time.process_time() - own_before
    with lock:
        done = list(results)
    demo.rounds.append((sum(ok for ok, _, _ in done), len(bodies), wall))
    demo.latencies += [seconds for ok, seconds, _ in done if ok]
    demo.batches += [batch for ok, _, batch in done if ok and batch is not None]


def rows_of(demo: Demo, body: bytes, timeout_s: float) -> int:
    """How many rows one answer holds (the warm-up's first answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=timeout_s)
    try:
        status, data = post(connection, body)
    finally:
        connection.close()
    if status != 200:
        raise RuntimeError(f"the {demo.name} demo answered HTTP {status}: {data[:300]!r}")
    return len(json.loads(data)["answers"])


def refuse(demo: Demo, timeout_s: float) -> None:
    for name, body in BAD_REQUESTS.items():
        connection = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=timeout_s)
        try:
            demo.refused[name] = post(connection, body)[0]
        except (OSError, http.client.HTTPException):
            demo.refused[name] = 0
        finally:
            connection.close()


def request_bodies(task_name: str, data: Path, count: int) -> list[bytes]:
    task = get(task_name)
    folder = data / task.name
    split = folder / "validation.tsv" if (folder / "validation.tsv").is_file() else folder / "dev.tsv"
    examples = read_tsv(split, task)
    bodies = []
    for i in range(count):
        j = i % len(examples.sentences)
        body = {"text": examples.sentences[j]}
        if task.pair:
            body["second"] = examples.second[j]
        bodies.append(json.dumps(body).encode())
    return bodies


def sweep_task_name(tracking_uri: str, sweep: str | None) -> tuple[str, str]:
    from mlflow.tracking import MlflowClient

    from orchestrator.report.best import best_runs
    from orchestrator.report.reader import resolve_sweep
    from orchestrator.serve.predict import sweep_task

    client = MlflowClient(tracking_uri)
    name = resolve_sweep(client, sweep)
    return name, sweep_task(best_runs(client, name), name).name


def report(demos: list[Demo], clients: int) -> bool:
    print(f"\n{'demo':<24} {'answered':>10} {'requests/s':>11} {'p50 s':>7} {'p95 s':>7} "
          f"{'batch, mean ≤ max':>17}   rounds (requests/s)")
    rates = {}
    for demo in demos:
        answered_n = sum(r[0] for r in demo.rounds)
        sent = sum(r[1] for r in demo.rounds)
        rates[demo.name] = answered_n / sum(r[2] for r in demo.rounds)
        p50, p95 = (np.percentile(demo.latencies, [50, 95]) if demo.latencies else (float("nan"),) * 2)
        batch = f"{np.mean(demo.batches):.1f} ≤ {max(demo.batches)}" if demo.batches else "–"
        per_round = ", ".join(f"{r[0] / r[2]:.1f}" for r in demo.rounds)
        print(f"{demo.name:<24} {f'{answered_n}/{sent}':>10} {rates[demo.name]:>11.1f} {p50:>7.2f} "
              f"{p95:>7.2f} {batch:>17}   {per_round}")
    for demo in demos:
        sent = sum(r[1] for r in demo.rounds)
        print(f"CPU ms a request, {demo.name}: " + ", ".join(
            f"{kind} {1000 * demo.cpu.get(kind, 0.0) / sent:.0f}"
            for kind in ("replica", "proxy", "rest", "clients")))
    for demo in demos:
        print(f"bad requests, {demo.name}: " + ", ".join(f"{k} → {v}" for k, v in demo.refused.items()))
    before, after = demos
    print(f"\nafter ÷ before at {clients} concurrent clients: {rates[after.name] / rates[before.name]:.2f}× "
          "requests/s (target ≥ 2×, p95 no worse)")
    all_answered = all(r[0] == r[1] for demo in demos for r in demo.rounds)
    all_refused = all(400 <= v < 500 for demo in demos for v in demo.refused.values())
    print(f"all answered: {all_answered} · every bad request refused with a 4xx: {all_refused}")
    return all_answered and all_refused


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    parser.add_argument("--sweep", help="sweep name (default: the only sweep in the store)")
    # The demo before batching (issue 29's "today"): once batching is on main, main is no baseline.
    parser.add_argument("--baseline", default="f6059b9", help="git revision of the demo to compare with")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per round and demo")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=offline_folder(),
                        help="the offline data folder the sentences come from (default: $METADISTIL_DATA)")
    parser.add_argument("--timeout-s", type=float, default=1200.0, help="the whole run's bound")
    parser.add_argument("--request-timeout-s", type=float, default=60.0)
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1 or args.rounds < 1:
        print("error: --clients, --requests and --rounds must be at least 1", file=sys.stderr)
        return 2
    if args.data is None:
        print("error: no data folder: set METADISTIL_DATA or pass --data", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout_s
    if args.tracking_uri.startswith("sqlite:///") and not args.tracking_uri[10:].startswith("/"):
        # the baseline runs from another folder: a relative store path must name the same file
        args.tracking_uri = f"sqlite:///{Path(args.tracking_uri[10:]).resolve()}"
    args.sweep, task = sweep_task_name(args.tracking_uri, args.sweep)
    bodies = request_bodies(task, args.data, args.requests)
    baseline = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True)
    if archive.returncode != 0:
        print(f"error: git archive {args.baseline}: {archive.stderr.decode().strip()}", file=sys.stderr)
        return 2
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                              capture_output=True, text=True).stdout.strip()
    print(f"sweep {args.sweep!r} ({task}) in {args.tracking_uri}; {args.clients} clients, {args.requests} "
          f"requests a round, {args.rounds} rounds; {os.cpu_count()} CPUs, load average {load_average()}")
    demos = [start(f"before ({args.baseline} {revision})", baseline, args),
             start("after (this tree)", ROOT, args)]
    try:
        for demo in demos:
            wait_started(demo, deadline)
        rows = {}
        for demo in demos:
            rows[demo.name] = rows_of(demo, bodies[0], args.request_timeout_s)
            drive(demo, bodies[:args.clients * WARMUP_PER_CLIENT], args.clients, None,
                  args.request_timeout_s, deadline)
            demo.rounds.clear(), demo.latencies.clear(), demo.batches.clear(), demo.cpu.clear()
            print(f"{demo.name}: {rows[demo.name]} rows an answer, warmed up")
        for number in range(args.rounds):
            for demo in demos:
                drive(demo, bodies, args.clients, rows[demo.name], args.request_timeout_s, deadline)
                answered_n, sent, wall = demo.rounds[-1]
                print(f"round {number + 1}, {demo.name}: {answered_n}/{sent} answered in {wall:.1f} s "
                      f"(load average {load_average()})", flush=True)
        for demo in demos:
            refuse(demo, args.request_timeout_s)
    finally:
        for demo in demos:
            kill_session(demo.process.pid, demo.ray_tmp)
            demo.process.wait()
        shutil.rmtree(baseline, ignore_errors=True)
    return 0 if report(demos, args.clients) else 1


if __name__ == "__main__":
    sys.exit(main())
