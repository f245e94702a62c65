"""A half-pruned MiniLM against MiniLM (issue 29's pruning target): batch-1 latency ratio and SST-2
test accuracy of ``minilm%50`` distilled (KD) from the fine-tuned MiniLM, beside MiniLM fine-tuned
on the same data.

    python benchmarks/bench_prune.py                  # SST-2 from $METADISTIL_DATA/sst2
    python benchmarks/bench_prune.py --data <offline data folder> --pruned minilm%50 minilm@4%50

The runs, each built as a sweep builds it (``trainers.models.refs.resolve``, ``build_model``) and
trained with the project's loop (``trainers.engine.loop``) on the same ``--train-size`` SST-2 training
phrases for ``--epochs`` epochs at ``--lr`` (default 2,000, 2 and 1e-4, as ``bench_int8.py``):

1. MiniLM fine-tuned (``finetune``): the baseline, and the teacher;
2. each ``--pruned`` reference (default ``minilm%50``) distilled by ``kd`` from that fine-tuned
   MiniLM (its folder as the trial's teacher checkpoint, as stage 2 of a sweep reads it), pruned
   when its trial builds it: importance on the trial's own training phrases (``trainers/models/prune.py``);
3. with ``--finetune-pruned``, each also fine-tuned without a teacher (what KD adds);
4. with ``--prune-teacher``, each also taken of the fine-tuned MiniLM's folder (``<folder>%50``,
   "fine-tuned minilm%50"): scored under its trained classifier, as Michel et al. score, and
   started from task-tuned weights, then distilled by KD from that MiniLM as in 2.

``--keep DIR`` saves every trained model there and reuses those it already holds (same method,
reference, size, epochs and seed), so that the measurement can be repeated without training again.

Accuracy: on the same test examples (SST-2's labeled test file), paired against the fine-tuned
MiniLM with the exact McNemar test. Cost: ``trainers.models.cost.measure_side_by_side`` of all the models
on the first ``--sentences`` test sentences, ``--threads`` thread(s), interleaved sentence by
sentence so that another process's load falls on all alike, eagerly (as the trials log it) and,
unless ``--no-traced``, as TorchScript traces. The target: pruned ÷ MiniLM median latency at batch
1 ≤ 0.65 and the KD student's accuracy at most 1.5 points below the fine-tuned MiniLM's.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_int8 import text_table  # noqa: E402
from orchestrator.report.stats import mcnemar_exact  # noqa: E402
from trainers.config import DataConfig, TrainConfig  # noqa: E402
from trainers.data.glue import Examples, load_splits  # noqa: E402
from trainers.data.source import offline_folder  # noqa: E402
from trainers.engine.evaluate import predict  # noqa: E402
from trainers.engine.loop import Trial, run  # noqa: E402
from trainers.errors import UserError  # noqa: E402
from trainers.models.build import Built, build_model, count_parameters  # noqa: E402
from trainers.models.cost import Cost, measure_side_by_side  # noqa: E402
from trainers.models.refs import resolve  # noqa: E402

BASE = "minilm"
TARGET_RATIO = 0.65
TARGET_POINTS = 1.5


@dataclass(frozen=True)
class Trained:
    label: str  # e.g. "minilm%50 (KD)"
    student: Built
    test: Examples
    seconds: float


def train(method: str, reference: str, data: str, args: argparse.Namespace, scratch: Path,
          teacher: Path | None = None, written: str = "") -> Trained:
    """``reference`` trained by ``method`` with the project's loop (KD: from the model in ``teacher``);
    saved under ``--keep``, or read from there when it holds it already. ``written``: its name in
    the table, when not ``reference``."""
    written = written or reference
    label = f"{written} ({'KD' if method == 'kd' else 'fine-tuned'})"
    sources = resolve([reference, BASE], "real", Path.cwd())
    data_config = DataConfig(source=data, train_size=args.train_size, quiz_size=1, test_split="labeled")
    distil = {"teachers": (sources[BASE].source,), "teacher_dirs": (str(teacher),)} if teacher else {}
    config = TrainConfig(method=method, student=sources[reference].source, size="real",
                         epochs=args.epochs, lr=args.lr, data=data_config, seed=args.seed, **distil)
    name = f"{method}-{written.replace(' ', '-')}-{args.train_size}-{args.epochs}-{args.seed}"
    kept = args.keep / name if args.keep else None
    if kept is not None and (kept / "config.json").is_file():
        built = build_model(str(kept), "real", train_texts=(), cache_dir=scratch / "cache")
        return Trained(label, built, load_splits(data_config).test, float("nan"))
    started = time.perf_counter()
    trial = Trial.build(config, cache_dir=scratch / "cache", device=torch.device("cpu"))
    result = run(trial, report=lambda epoch, metrics, folder: shutil.rmtree(folder),
                 scratch_dir=scratch / "checkpoints")
    seconds = time.perf_counter() - started
    print(f"trained {label} in {seconds:.0f} s", file=sys.stderr, flush=True)
    if kept is not None:
        result.student.model.save_pretrained(kept)
        result.student.tokenizer.save_pretrained(kept)
    return Trained(label, result.student, result.test, seconds)


def correct(trained: Trained, test: Examples, max_length: int, scratch: Path):
    built = trained.student
    encoded = built.encode(test, max_length, scratch / "cache")
    predictions, _ = predict(built.model.cpu().eval(), encoded, pad_id=built.tokenizer.pad_token_id,
                             batch_size=64, device=torch.device("cpu"))
    return predictions == test.labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=offline_folder(),
                        help="the offline data folder, holding sst2/ (default: $METADISTIL_DATA)")
    parser.add_argument("--pruned", nargs="+", default=[f"{BASE}%50"],
                        help="pruned references to distil from the fine-tuned MiniLM (default: minilm%%50)")
    parser.add_argument("--finetune-pruned", action="store_true",
                        help="also fine-tune each pruned reference without a teacher")
    parser.add_argument("--prune-teacher", action="store_true",
                        help="also distil each pruned reference taken of the fine-tuned MiniLM")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentences", type=int, default=256, help="test sentences timed (≥ 32)")
    parser.add_argument("--rounds", type=int, default=2, help="times each sentence and batch is run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--traced", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the models as TorchScript traces (default: on)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="save each trained model in this folder, and reuse those it holds")
    args = parser.parse_args()
    if not args.data:
        parser.error("--data: no offline data folder; pass one or set METADISTIL_DATA")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged MiniLM, not a download
    torch.set_num_threads(os.cpu_count() or 1)  # training; the cost is timed on --threads (pinned there)
    started, load = time.time(), os.getloadavg()
    data = str(args.data / "sst2")
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as folder:
        scratch = Path(folder)
        try:
            base = train("finetune", BASE, data, args, scratch)
            teacher = scratch / "teacher"
            base.student.model.save_pretrained(teacher)
            base.student.tokenizer.save_pretrained(teacher)
            runs = [base]
            for reference in args.pruned:
                runs.append(train("kd", reference, data, args, scratch, teacher))
                if args.prune_teacher and reference.startswith(BASE):  # the same cut of the fine-tuned one
                    runs.append(train("kd", str(teacher) + reference[len(BASE):], data, args, scratch,
                                      teacher, written="fine-tuned " + reference))
                if args.finetune_pruned:
                    runs.append(train("finetune", reference, data, args, scratch))
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        test, max_length = base.test, 64
        right = {r.label: correct(r, test, max_length, scratch) for r in runs}
        models = {r.label: r.student.model.cpu().eval() for r in runs}
        sentences = list(test.sentences[:args.sentences])
        costs: dict[bool, dict[str, Cost]] = {}
        for traced in (False, True) if args.traced else (False,):
            costs[traced] = measure_side_by_side(models, base.student.tokenizer, sentences,
                                                 threads=args.threads, rounds=args.rounds,
                                                 max_length=max_length, traced=traced)
    header = ["model", "params", "kept heads/neurons per layer", "size MB", "b1 median ms eager / traced",
              "b1 ÷ MiniLM eager / traced", "b32 sent/s eager", "test acc %", "Δ points",
              "McNemar MiniLM-only/this-only", "target met"]
    rows = [header]
    for r in runs:
        model = models[r.label]
        pruning = getattr(model.config, "pruning", None)
        kept = (f"{len(pruning['heads'][0])}/{pruning['heads_before']}, "
                f"{len(pruning['neurons'][0])}/{pruning['neurons_before']}" if pruning else
                f"{model.config.num_attention_heads}, {model.config.intermediate_size}")
        medians = [costs[t][r.label].latency_ms_median for t in costs]
        ratios = [costs[t][r.label].latency_ms_median / costs[t][base.label].latency_ms_median
                  for t in costs]
        points = 100 * (right[r.label].mean() - right[base.label].mean())
        paired = mcnemar_exact(right[base.label], right[r.label])
        met = ("" if r is base else "yes" if ratios[0] <= TARGET_RATIO and points >= -TARGET_POINTS
               and r.label.endswith("(KD)") else "no")
        rows.append([r.label, f"{count_parameters(model):,}", kept, f"{costs[False][r.label].size_mb:.1f}",
                     " / ".join(f"{m:.2f}" for m in medians), " / ".join(f"{x:.2f}" for x in ratios),
                     f"{costs[False][r.label].throughput_b32:.0f}", f"{100 * right[r.label].mean():.2f}",
                     "" if r is base else f"{points:+.2f}",
                     "" if r is base else f"{paired.a_only}/{paired.b_only}, p={paired.p_value:.2f}", met])
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, timed on {args.threads} thread(s), {cpu}, {os.cpu_count()} CPUs; "
          f"load average {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"({time.time() - started:.0f} s)")
    print(f"trained {args.epochs} epoch(s) on {args.train_size} SST-2 phrases, lr {args.lr}, seed "
          f"{args.seed} (train s: " + ", ".join(f"{r.label} {r.seconds:.0f}" for r in runs)
          + "; nan: reused); "
          f"accuracy on {len(test)} test examples; cost on the first {len(sentences)} test "
          f"sentences, {args.rounds} round(s), all models interleaved")
    print(text_table(rows))
    print(f"target: pruned ÷ MiniLM b1 median (eager) ≤ {TARGET_RATIO}, KD student's accuracy ≥ "
          f"MiniLM fine-tuned − {TARGET_POINTS} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
