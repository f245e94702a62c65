"""Where a MetaDistil step's time goes, beside the naive exact step: ``torch.profiler`` over the
same batches ``bench_steps.py`` times, each phase of a step under a named range.

    python benchmarks/profile_step.py                    # tiny pair, CPU, 1 thread
    python benchmarks/profile_step.py --size minilm --examples 128
    python benchmarks/profile_step.py --trace /tmp/md    # also Chrome traces (chrome://tracing)

Phases of ``trainers/methods/metadistil.py`` (k = 1): ``forward`` (the student on the batch, shared by the
pilot and the real step), ``teachers@φ`` (their forward with graph), ``pilot`` (∇θ L through the
student's backward), ``quiz`` (Q(θ′) and v = ∇θ′ Q), ``jvp`` (u = (∂o/∂θ)·v), ``teacher backward``
(the mixed term and the teachers' backward and step), ``real`` (the teachers at φ′ and the
student's step). The naive step's: ``teacher step`` (pilot with create_graph, quiz, double
backward) and ``real`` (a fresh student forward, the teachers at φ′, the student's step). Each is
wall time on the profiled steps, whose sum is the step's: the table says which phase to cut, and
the floor line what no exact step can skip (a live-KD step and the quiz pass).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_steps  # noqa: E402
from benchmarks.naive_metadistil import NaiveMetaDistil  # noqa: E402
from trainers.data.source import offline_folder  # noqa: E402
from trainers.engine import precision  # noqa: E402
from trainers.methods.metadistil import MetaDistil  # noqa: E402
from trainers.methods.objective import Objective  # noqa: E402

# The phases by the method that runs them; each is timed where it is called from the step.
PHASES = {"metadistil": {MetaDistil: ("_quiz", "_student_jvp", "_teacher_update", "_real_step")},
          "naive": {NaiveMetaDistil: ("teacher_step",)}}
NAMES = {"_quiz": "quiz", "_student_jvp": "jvp", "_teacher_update": "teacher backward",
         "_real_step": "real", "teacher_step": "teacher step", "student": "forward",
         "teachers": "teachers"}


@contextlib.contextmanager
def timed_phases(method: str, seconds: dict[str, float]):
    """Wrap each phase's method so that it runs under a named profiler range and adds its wall
    time to ``seconds``; the trainers' code is untouched (restored on exit)."""
    patched = [(owner, name) for owner, names in PHASES[method].items() for name in names]
    patched += [(Objective, "student"), (Objective, "teachers")]
    originals = {(owner, name): getattr(owner, name) for owner, name in patched}

    depth = [0]  # a phase inside another (the teachers inside the real step) is the outer one's

    def wrap(name, function):
        @functools.wraps(function)
        def phase(*args, **kwargs):
            if depth[0]:
                return function(*args, **kwargs)
            label = NAMES[name]
            if name == "teachers" and not torch.is_grad_enabled():
                label = "teachers (no grad)"
            depth[0] += 1
            started = time.perf_counter()
            try:
                with record_function(label):
                    return function(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started
                depth[0] -= 1
        return phase

    for (owner, name), function in originals.items():
        setattr(owner, name, wrap(name, function))
    try:
        yield
    finally:
        for (owner, name), function in originals.items():
            setattr(owner, name, function)


def profile_method(method: str, args, device: torch.device) -> tuple[float, dict[str, float], object]:
    """(ms per step, ms per phase per step, the profiler) over one pass of the batches."""
    n_quiz = args.quiz_size
    teacher, student, tokenizer, texts, labels = bench_steps.build(args.size, device,
                                                                  args.examples + n_quiz, args.data)
    batches, quiz, encoded = bench_steps.batches_and_quiz(tokenizer, texts, labels, args, device)
    seconds: dict[str, float] = defaultdict(float)
    with precision.applied(args.precision, device):
        step = bench_steps.make_step(method, teacher, student, tokenizer, encoded, quiz, device,
                                     len(batches) * 2, 1)
        student.train()
        for batch in batches[:args.warmup]:
            step(batch)
        with timed_phases(method, seconds), profile(activities=[ProfilerActivity.CPU]) as prof:
            started = time.perf_counter()
            for batch in batches:
                step(batch)
            total = time.perf_counter() - started
    steps = len(batches)
    return 1000 * total / steps, {k: 1000 * v / steps for k, v in seconds.items()}, prof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "minilm", "real"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quiz-size", type=int, default=100)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--meta-every", type=int, default=1, help=argparse.SUPPRESS)  # bench_steps reads it
    parser.add_argument("--data", type=Path, default=offline_folder(),
                        help="the offline data folder, holding sst2/train.tsv (default: $METADISTIL_DATA)")
    parser.add_argument("--trace", type=Path, help="write <trace>-<method>.json Chrome traces")
    parser.add_argument("--top", type=int, default=8, help="operators listed per method")
    args = parser.parse_args()
    if args.data is None:
        parser.error("--data: no offline data folder; pass one or set METADISTIL_DATA")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = {}
    for method in ("metadistil", "naive", "kd_live", "quiz_pass"):
        if method in PHASES:
            step_ms, phases, prof = profile_method(method, args, device)
        else:  # the floor's parts: timed as bench_steps times them, in this process
            step_ms, phases, prof = bench_steps.time_method(method, args, device)["step_ms"], {}, None
        rows[method] = step_ms
        print(f"\n{method}: {step_ms:.1f} ms per step (batch {args.batch_size}, size {args.size}, "
              f"quiz {args.quiz_size}, {args.threads} thread(s))")
        for label, ms in sorted(phases.items(), key=lambda kv: -kv[1]):
            print(f"  {label:<20} {ms:8.1f} ms  {100 * ms / step_ms:5.1f} %")
        if phases:  # the rest: the pilot backward and the mixed term (MetaDistil), the updates
            rest = step_ms - sum(phases.values())
            print(f"  {'(the rest)':<20} {rest:8.1f} ms  {100 * rest / step_ms:5.1f} %")
        if prof is not None:
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top,
                                            max_name_column_width=40))
            if args.trace:
                prof.export_chrome_trace(f"{args.trace}-{method}.json")
    floor = rows["kd_live"] + rows["quiz_pass"]
    print(f"\nMetaDistil ÷ naive: {rows['metadistil'] / rows['naive']:.2f}×;  floor (live-KD step + "
          f"quiz pass) = {floor:.1f} ms = {floor / rows['naive']:.2f}× the naive step")


if __name__ == "__main__":
    main()
