"""When more than one Ray Train worker per trial pays off: the same sweep with
``resources.workers_per_trial`` 1 and N, through ``python -m orchestrator.sweep`` as a user runs it.

    python benchmarks/bench_workers.py                      # tiny presets, 2 workers
    python benchmarks/bench_workers.py --pair minilm --train-size 320

N workers with ``batch_size: B / N`` each train as one worker with ``batch_size: B`` (the same global
batches: ``tests/trainers/runtime/test_multiworker.py``), so the comparison is the same training. Each run
gets a fresh storage (nothing reused) and trials run one at a time (``max_concurrent: 1``), so a
trial has the machine's cores to itself; samples/s is the trials' own per-epoch figure (training
only: no start-up, no evaluation), read from each trial's ``result.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PAIRS = {"tiny": ("bert", "tinybert"), "minilm": ("minilm", "minilm@2")}


def space(pair: str, workers: int, args) -> dict:
    teacher, student = PAIRS[pair]
    return {
        "name": f"workers{workers}",
        "seeds": [0],
        "data": {"train_size": args.train_size, "quiz_size": 20, "test_size": 50, "max_length": 64},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size // workers},
        "teacher_train": {"epochs": 1},
        "resources": {"workers_per_trial": workers, "cpus_per_worker": 1, "max_concurrent": 1},
        "grid": [{"methods": ["finetune"], "students": [student]},
                 {"methods": ["kd", "metadistil"], "teachers": [[teacher]], "students": [student]}],
    }


def run(pair: str, workers: int, args, folder: Path) -> tuple[dict[str, float], float]:
    """Samples/s of the last epoch by method (the student's trials), and the sweep's wall time."""
    work = folder / f"w{workers}"
    work.mkdir()
    (work / "space.yaml").write_text(yaml.safe_dump(space(pair, workers, args)))
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="rt", dir="/tmp"), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator.sweep", "--space", str(work / "space.yaml"),
                    "--storage", str(work / "store"), "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
                    "--no-report"], cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    speeds = {}
    student = PAIRS[pair][1]
    tail = student if "@" not in student else "@" + student.split("@")[1]  # a folder's layer pick
    for result in (work / "store" / "models").glob("*/result.json"):
        config = json.loads((result.parent / "config.json").read_text())
        if config["student"].endswith(tail):  # not the teacher's fine-tune
            speeds[config["method"]] = json.loads(result.read_text())["history"][-1]["samples_per_s"]
    return speeds, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", choices=sorted(PAIRS), default="tiny")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--train-size", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one, wall_one = run(args.pair, 1, args, Path(tmp))
        many, wall_many = run(args.pair, args.workers, args, Path(tmp))
    print(f"{args.pair} pair, global batch {args.batch_size}, {args.train_size} examples, "
          f"{os.cpu_count()} cores; samples/s of training (last epoch)")
    print(f"{'method':<11} {'1 worker':>10} {f'{args.workers} workers':>10} {'speed-up':>9}")
    for method in ("finetune", "kd", "metadistil"):
        if method in one and method in many:
            gain = many[method] / one[method]
            print(f"{method:<11} {one[method]:>10.1f} {many[method]:>10.1f} {gain:>8.2f}×")
    print(f"whole sweep (Ray start-up, teacher, 3 trials): {wall_one:.0f} s with 1 worker, "
          f"{wall_many:.0f} s with {args.workers}")


if __name__ == "__main__":
    main()
