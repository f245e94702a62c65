"""int8 against fp32 (issue 29's first target): for MiniLM and MiniLM@2, size on disk, CPU latency at
batch 1, throughput at batch 32 and SST-2 test accuracy, each model beside its int8 variant.

    python benchmarks/bench_int8.py                  # SST-2 from $METADISTIL_DATA/sst2
    python benchmarks/bench_int8.py --data <offline data folder> --models minilm@2 --epochs 3
    python benchmarks/bench_int8.py --model-dir results/store/models/<key>  # finished trials

Each model is built as a sweep builds it (its reference resolved by ``trainers.models.refs``, built by
``trainers.models.build.build_model``) and fine-tuned with the project's loop
(``trainers.engine.loop``, method
``finetune``) on ``--train-size`` SST-2 training phrases for ``--epochs`` epochs (default 2,000 and
2 at lr 1e-4, the future sweep's settings on twice its phrases: 1 epoch on 1,000 left MiniLM@2 at
chance, 50.5 %, and a model that has learned nothing cannot show an accuracy loss);
``--model-dir`` instead reads finished trial folders (``model/`` and ``config.json``, as the worker
writes them), each with its own test split. The int8 variant is
``trainers.models.quantize.int8`` of the trained model. Both are evaluated on the same test examples
(SST-2's labeled test file for a fine-tune here) with ``trainers.engine.evaluate.predict``; the paired
difference is tested with the exact McNemar test (``orchestrator.report.stats.mcnemar_exact``).

Cost: ``trainers.models.cost.measure_side_by_side`` on the first ``--sentences`` test sentences, in file
order, ``--threads`` torch threads, fp32 and int8 interleaved sentence by sentence so that a load
another process puts on the machine falls on both alike; once eagerly and once as TorchScript
traces (``--no-traced``: eagerly only), since Python's per-call overhead, the same for both, is a
large share of a short sentence's time (``trainers/models/cost.py``). The test accuracy is the eager
models' (a trace is checked to answer as its model does). The target: int8 ÷ fp32 median latency at
batch 1 ≤ 0.55, int8 accuracy within 0.5 points of fp32. Prints the setting, then one table.
"""

from __future__ import annotations

import argparse
import json
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

from orchestrator.report.stats import McNemarResult, mcnemar_exact  # noqa: E402
from trainers.config import DataConfig, TrainConfig  # noqa: E402
from trainers.data.glue import Examples, load_splits  # noqa: E402
from trainers.data.source import offline_folder  # noqa: E402
from trainers.engine.evaluate import predict  # noqa: E402
from trainers.engine.loop import Trial, run  # noqa: E402
from trainers.errors import UserError  # noqa: E402
from trainers.models.build import Built, build_model  # noqa: E402
from trainers.models.cost import Cost, measure_side_by_side  # noqa: E402
from trainers.models.quantize import ENGINE, int8  # noqa: E402
from trainers.models.refs import resolve  # noqa: E402
from trainers.record.artifacts import CONFIG_ARTIFACT, MODEL_ARTIFACT_DIR  # noqa: E402

TARGET_RATIO = 0.55
TARGET_POINTS = 0.5


@dataclass(frozen=True)
class Row:
    label: str
    how: str  # eager or traced
    fp32: Cost
    int8: Cost
    accuracy_fp32: float
    accuracy_int8: float
    test_size: int
    mcnemar: McNemarResult

    def cells(self) -> list[str]:
        f, q = self.fp32, self.int8
        ratio = q.latency_ms_median / f.latency_ms_median
        points = 100 * (self.accuracy_int8 - self.accuracy_fp32)
        met = ratio <= TARGET_RATIO and abs(points) <= TARGET_POINTS
        return [self.label, self.how, f"{f.size_mb:.1f} / {q.size_mb:.1f}",
                f"{f.latency_ms_median:.2f} / {q.latency_ms_median:.2f}",
                f"{f.latency_ms_p95:.2f} / {q.latency_ms_p95:.2f}",
                f"{f.throughput_b32:.0f} / {q.throughput_b32:.0f}", f"{ratio:.2f}",
                f"{100 * self.accuracy_fp32:.2f} / {100 * self.accuracy_int8:.2f}", f"{points:+.2f}",
                f"{self.mcnemar.a_only}/{self.mcnemar.b_only}, p={self.mcnemar.p_value:.2f}",
                "yes" if met else "no"]


HEADER = ["model", "timed", "size MB fp32/int8", "b1 median ms", "b1 p95 ms", "b32 sent/s", "int8÷fp32 b1",
          "test acc % fp32/int8", "Δ points", "McNemar fp32-only/int8-only", "target met"]


def fine_tuned(reference: str, data: str, train_size: int, epochs: int, lr: float, scratch: Path
               ) -> tuple[Built, Examples, int]:
    """(built model, test examples, max_length) of ``reference`` fine-tuned by the project's loop."""
    source = resolve([reference], "real", Path.cwd())[reference].source
    data_config = DataConfig(source=data, train_size=train_size, quiz_size=1,  # a fine-tune reads none
                             test_split="labeled")
    config = TrainConfig(method="finetune", student=source, size="real", epochs=epochs, lr=lr,
                         data=data_config)
    trial = Trial.build(config, cache_dir=scratch / "cache", device=torch.device("cpu"))
    result = run(trial, report=lambda epoch, metrics, folder: shutil.rmtree(folder),
                 scratch_dir=scratch / "checkpoints")
    return result.student, trial.splits.test, config.data.max_length


def finished(folder: Path, scratch: Path) -> tuple[Built, Examples, int]:
    """The same, read from a finished trial's folder (``model/``, ``config.json``)."""
    config = TrainConfig.from_dict(json.loads((folder / CONFIG_ARTIFACT).read_text()))
    built = build_model(str(folder / MODEL_ARTIFACT_DIR), "real", train_texts=(), cache_dir=scratch)
    return built, load_splits(config.data).test, config.data.max_length


def compare(label: str, built: Built, test: Examples, max_length: int, args: argparse.Namespace,
            scratch: Path) -> list[Row]:
    model = built.model.cpu().eval()
    quantized = int8(model, label)
    encoded = built.encode(test, max_length, scratch / "cache")
    correct = {}
    for name, variant in (("fp32", model), ("int8", quantized)):
        predictions, _ = predict(variant, encoded, pad_id=built.tokenizer.pad_token_id, batch_size=64,
                                 device=torch.device("cpu"))
        correct[name] = predictions == test.labels
    accuracy = {name: float(right.mean()) for name, right in correct.items()}
    paired = mcnemar_exact(correct["fp32"], correct["int8"])
    rows = []
    for traced in (False, True) if args.traced else (False,):
        costs = measure_side_by_side({"fp32": model, "int8": quantized}, built.tokenizer,
                                     list(test.sentences[:args.sentences]), threads=args.threads,
                                     rounds=args.rounds, max_length=max_length, traced=traced)
        rows.append(Row(label, "traced" if traced else "eager", costs["fp32"], costs["int8"],
                        accuracy["fp32"], accuracy["int8"], len(test), paired))
    return rows


def text_table(cells: list[list[str]]) -> str:
    """``cells`` (a header row first) as aligned plain-text columns, a rule under the header."""
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join([lines[0], "-+-".join("-" * w for w in widths), *lines[1:]])


def table(rows: list[Row]) -> str:
    return text_table([HEADER] + [row.cells() for row in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=offline_folder(),
                        help="the offline data folder, holding sst2/ (default: $METADISTIL_DATA)")
    parser.add_argument("--models", nargs="+", default=["minilm", "minilm@2"],
                        help="model references to fine-tune and compare (default: minilm minilm@2)")
    parser.add_argument("--model-dir", nargs="+", type=Path, default=[],
                        help="finished trial folders to compare instead of fine-tuning --models")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--sentences", type=int, default=256, help="test sentences timed (≥ 32)")
    parser.add_argument("--rounds", type=int, default=2, help="times each sentence and batch is run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--traced", action=argparse.BooleanOptionalAction, default=True,
                        help="also time both variants as TorchScript traces (default: on)")
    args = parser.parse_args()
    if not args.model_dir and not args.data:
        parser.error("--data: no offline data folder to fine-tune --models; pass one or set METADISTIL_DATA")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged MiniLM, not a download
    torch.set_num_threads(args.threads)
    started, load = time.time(), os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as folder:
        scratch = Path(folder)
        try:
            if args.model_dir:
                for trial in args.model_dir:
                    rows += compare(trial.name, *finished(trial, scratch), args, scratch)
            else:
                for reference in args.models:
                    built, test, max_length = fine_tuned(reference, str(args.data / "sst2"), args.train_size,
                                                         args.epochs, args.lr, scratch)
                    rows += compare(reference, built, test, max_length, args, scratch)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"torch {torch.__version__}, quantized engine {ENGINE}, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load average "
          f"{load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end ({time.time() - started:.0f} s)")
    trained = (f"fine-tuned {args.epochs} epoch(s) on {args.train_size} SST-2 phrases, lr {args.lr}"
               if not args.model_dir else "finished trial folders")
    print(f"models {trained}; accuracy on {rows[0].test_size} test examples; cost on the first "
          f"{args.sentences} test sentences, {args.rounds} round(s), fp32 and int8 interleaved")
    print(table(rows))
    print(f"target: int8÷fp32 b1 median ≤ {TARGET_RATIO}, |Δ accuracy| ≤ {TARGET_POINTS} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
