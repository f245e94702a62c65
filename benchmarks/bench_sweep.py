"""End-to-end sweep figures: wall time, scheduling efficiency and Ray's per-trial overhead.

    python benchmarks/bench_sweep.py [--space search_spaces/smoke.yaml]

Runs the sweep from scratch (fresh storage and MLflow store in a temporary folder, Ray started by
the sweep itself, report included) and prints:
- the sweep's wall time, end to end (target for the default space: ≤ 10 minutes);
- Σ trial wall times ÷ concurrent slots, and the sweep's wall time over it (target ≤ 1.10×); a
  trial's wall time is its Tune trainable's, Ray Train start-up and tear-down included;
- Ray's per-trial overhead: trial wall time minus the time spent inside the training function,
  per trial and as a share of the sweep's slot-time (target < 20 %), split into Ray Train's
  start-up (``fit()`` called → the worker runs the training function), the worker's imports (torch,
  transformers, MLflow) and the tear-down (the worker saved its trial → ``fit()`` returned);
- the Ray actors the sweep started, by class: each one a Python process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sweeps import started_actors  # noqa: E402  (the e2e test reads Ray's logs the same way)
from trainers.record.layout import StorageLayout  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=ROOT / "search_spaces" / "smoke.yaml")
    parser.add_argument("--in-place", action="store_true",
                        help="run exactly the default command (results in results/, kept); needs a "
                        "fresh results/store. Default: a new temporary folder")
    args = parser.parse_args()
    command = [sys.executable, "-m", "orchestrator.sweep", "--space", str(args.space)]
    if args.in_place:
        store = ROOT / "results" / "store"
        if store.exists():
            sys.exit(f"{store} exists: the figures are for a sweep from scratch; move it away first")
    else:
        work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
        store = work / "store"
        command += ["--storage", str(store), "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
                    "--report-dir", str(work / "report")]
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "RAY_TMPDIR": ray_tmp})
    wall = time.perf_counter() - started
    actors = Counter(started_actors(ray_tmp))
    shutil.rmtree(ray_tmp, ignore_errors=True)
    print(done.stdout[-2500:])
    if done.returncode != 0:
        sys.exit(f"sweep failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    trials = []
    layout = StorageLayout(store)
    for result_file in layout.models.glob("*/result.json"):
        result = json.loads(result_file.read_text())
        fit = json.loads(layout.trial_time_file(result["key"]).read_text())
        worker = result["timing"]
        trials.append({"name": result["name"], "trial": fit["wall_s"],
                       "start-up": worker["entered"] - fit["fit_started"],
                       "imports": worker["imported"] - worker["entered"],
                       "in loop": worker["finished"] - worker["imported"],
                       "tear-down": fit["fit_ended"] - worker["finished"]})
    spec = yaml.safe_load(args.space.read_text())
    resources = spec.get("resources", {})
    slots = max(1, int((os.cpu_count() or 1)
                       // (resources.get("workers_per_trial", 1) * resources.get("cpus_per_worker", 1))))
    columns = ["trial", "start-up", "imports", "in loop", "tear-down"]
    total = {c: sum(t[c] for t in trials) for c in columns}
    overhead = total["trial"] - total["in loop"]
    print(f"machine: {os.cpu_count()} cores; space {args.space.name}: {len(trials)} trials, "
          f"{slots} concurrent slots")
    print(f"{'trial (seconds)':<58}" + "".join(f"{c:>10}" for c in columns))
    for trial in sorted(trials, key=lambda t: t["name"]):
        print(f"{trial['name']:<58}" + "".join(f"{trial[c]:>10.1f}" for c in columns))
    print(f"{'mean':<58}" + "".join(f"{total[c] / len(trials):>10.1f}" for c in columns))
    print(f"sweep wall time, end to end: {wall:.0f} s = {wall / 60:.1f} min "
          f"(target for the default: ≤ 10 min)")
    print(f"Σ trial wall ÷ slots: {total['trial'] / slots:.0f} s; "
          f"sweep wall ÷ that: {wall / (total['trial'] / slots):.2f}× (target ≤ 1.10×)")
    print(f"Ray per-trial overhead: {overhead / len(trials):.1f} s a trial "
          f"(start-up {total['start-up'] / len(trials):.1f}, "
          f"imports {total['imports'] / len(trials):.1f}, tear-down {total['tear-down'] / len(trials):.1f}), "
          f"{overhead / (wall * slots):.0%} of the sweep's slot-time (target < 20 %); "
          f"outside trials (start-up, report): {wall - total['trial'] / slots:.0f} s")
    print(f"Ray actors started, each a Python process: {sum(actors.values())} for {len(trials)} trials ("
          + ", ".join(f"{name} {count}" for name, count in actors.most_common()) + ")")

if __name__ == "__main__":
    main()
