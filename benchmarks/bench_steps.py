"""Step and epoch cost of fine-tune, KD and MetaDistil, side by side in one process.

    python benchmarks/bench_steps.py                      # tiny presets, CPU
    python benchmarks/bench_steps.py --size minilm               # pretrained MiniLM-L6 → its layers {0, 5}
    python benchmarks/bench_steps.py --size real --device cuda   # BERT-base → DistilBERT, random init
    python benchmarks/bench_steps.py --device cuda --precision bf16   # what train.precision=bf16 runs

Prints per-step time, examples/s and peak memory for each method on the same models and batches
(real SST-2 training sentences), the ratios the trainers issue sets (MetaDistil step ≤ 3× KD step,
peak memory ≤ 2× KD; KD epoch ≤ 1.15× fine-tune epoch with cached teacher logits), and the machine.
It also times the quiz forward and backward of a meta step alone: with a live-KD step, whose work
the real student step repeats, it bounds any exact MetaDistil step from below; and the naive exact
step in the official code's style (``benchmarks/naive_metadistil.py``), the yardstick of the
MetaDistil ÷ naive ratio.
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU it is the peak resident set
of a fresh child process per method, above the same process after building the models.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.naive_metadistil import NaiveMetaDistil  # noqa: E402
from trainers.config import PRECISIONS  # noqa: E402
from trainers.data.batches import Batch, length_grouped  # noqa: E402
from trainers.data.glue import read_tsv  # noqa: E402
from trainers.data.source import offline_folder  # noqa: E402
from trainers.data.tokens import encode, pad  # noqa: E402
from trainers.engine import precision  # noqa: E402
from trainers.engine.evaluate import logits_of  # noqa: E402
from trainers.engine.update import StudentUpdate, TeacherUpdate  # noqa: E402
from trainers.methods.finetune import FineTune  # noqa: E402
from trainers.methods.kd import KD, CachedTeacherLogits, LiveTeachers  # noqa: E402
from trainers.methods.metadistil import MetaDistil  # noqa: E402
from trainers.methods.objective import Objective  # noqa: E402
from trainers.methods.quiz import QUIZ_CHUNK, quiz_chunks, quiz_gradient  # noqa: E402
from trainers.models.build import (  # noqa: E402
    bert_tokenizer,
    build_model,
    count_parameters,
    default_vocab,
    reference_config,
)
from trainers.models.refs import packaged_dir  # noqa: E402

METHODS = ("finetune", "kd_cached", "kd_live", "metadistil", "naive", "quiz_pass")
TURNS = ("metadistil", "naive", "kd_live", "quiz_pass")  # timed in turn for the headline ratios


class QuizPass:
    """Only the quiz forward and backward of a meta step, ``v = ∇θ Q(θ)`` on the same chunks:
    work no exact MetaDistil step can skip, timed alone to give the step a lower bound."""

    def __init__(self, student: torch.nn.Module, quiz) -> None:
        self.student, self.quiz = student, quiz

    def __call__(self, batch: Batch) -> None:
        quiz_gradient(self.student, {n: p for n, p in self.student.named_parameters() if p.requires_grad},
                      self.quiz)


def build(size: str, device: torch.device, examples: int, data: Path):
    train = read_tsv(data / "sst2" / "train.tsv")
    texts, labels = train.sentences[:examples], train.labels[:examples]
    vocab = default_vocab()
    if size == "tiny":
        cache = Path("/tmp/metadistil-bench-cache")
        teacher = build_model("bert", "tiny", train_texts=texts, cache_dir=cache, vocab_file=vocab, seed=1)
        student = build_model("distilbert", "tiny", train_texts=texts, cache_dir=cache, vocab_file=vocab,
                              seed=0)
        models, tokenizer = (teacher.model, student.model), student.tokenizer
    elif size == "minilm":  # the packaged pretrained MiniLM teacher, its layers {0, 5} as student
        folder = str(packaged_dir("minilm"))
        teacher, student = (build_model(name, "real", train_texts=texts, cache_dir=Path("/tmp"))
                            for name in (folder, f"{folder}@2"))
        models, tokenizer = (teacher.model, student.model), student.tokenizer
    else:  # real architectures, random init: BERT-base teacher, 6-layer DistilBERT student
        torch.manual_seed(0)
        models = tuple(AutoModelForSequenceClassification.from_config(reference_config(n))
                       for n in ("bert", "distilbert"))
        tokenizer = bert_tokenizer(vocab)
    teacher, student = (m.to(device) for m in models)
    return teacher, student, tokenizer, texts, labels


def make_step(method: str, teacher, student, tokenizer, encoded, quiz, device, total_steps: int,
              meta_every: int):
    update = StudentUpdate(student, lr=5e-5, weight_decay=0.01, total_steps=total_steps, warmup_ratio=0.0)
    objective = Objective(temperature=2.0, alpha=0.5, soft_loss="kl")
    teacher.eval()
    teacher.requires_grad_(method in ("metadistil", "naive"))
    if method == "finetune":
        return FineTune(student, update)
    if method == "kd_cached":
        logits = logits_of(teacher, encoded, pad_id=tokenizer.pad_token_id, batch_size=256, device=device)
        return KD(student, update, CachedTeacherLogits([logits], None), objective)
    if method == "kd_live":
        return KD(student, update, LiveTeachers([teacher], objective), objective)
    if method == "quiz_pass":
        return QuizPass(student, quiz)
    teacher_update = TeacherUpdate(teacher, lr=1e-5, weight_decay=0.0, total_steps=total_steps)
    if method == "naive":
        return NaiveMetaDistil(student, update, [teacher], [teacher_update], quiz, objective=objective,
                               pilot_lr=5e-5)
    return MetaDistil(student, update, [teacher], [teacher_update], [quiz], objective=objective,
                      pilot_lr=5e-5, meta_every=meta_every)


def batches_and_quiz(tokenizer, texts, labels, args, device):
    """The training batches (the loop's own batching: shuffled, grouped by length), the quiz's
    chunks after them, and the encoded training texts."""
    n_quiz = args.quiz_size
    encoded = encode(tokenizer, texts[:args.examples], 64)
    quiz_ids = encode(tokenizer, texts[args.examples:args.examples + n_quiz], 64)
    quiz = quiz_chunks(quiz_ids, labels[args.examples:args.examples + n_quiz], np.arange(n_quiz),
                       tokenizer.pad_token_id, device, QUIZ_CHUNK if device.type == "cpu" else n_quiz)
    label_t = torch.from_numpy(labels[:args.examples]).to(device)
    batches = []
    rng = np.random.default_rng(0)
    for rows in length_grouped(rng.permutation(args.examples), np.diff(encoded.offsets), args.batch_size,
                               rng):
        view = pad(encoded.rows(rows), tokenizer.pad_token_id, device)
        batches.append(Batch(rows, label_t[torch.from_numpy(rows).to(device)], view, [view]))
    return batches, quiz, encoded


def time_method(method: str, args, device) -> dict:
    teacher, student, tokenizer, texts, labels = build(args.size, device, args.examples + args.quiz_size,
                                                       args.data)
    batches, quiz, encoded = batches_and_quiz(tokenizer, texts, labels, args, device)
    rss_before = _rss_mb()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with precision.applied(args.precision, device):  # as trainers/engine/loop.py runs a trial
        started = time.perf_counter()
        step = make_step(method, teacher, student, tokenizer, encoded, quiz, device, len(batches) * 2,
                         args.meta_every)
        setup_s = time.perf_counter() - started
        student.train()
        for batch in batches[:args.warmup]:
            step(batch)
        _sync(device)
        started = time.perf_counter()
        for batch in batches:  # one epoch over `examples`: every batch once, as training does
            step(batch)
        _sync(device)
        epoch_s = time.perf_counter() - started
    peak = ((torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda"
            else _rss_mb() - rss_before)
    return {"method": method, "step_ms": 1000 * epoch_s / len(batches), "epoch_s": epoch_s,
            "setup_s": setup_s, "samples_per_s": args.examples / epoch_s, "peak_mb": peak,
            "student_params": count_parameters(student), "teacher_params": count_parameters(teacher)}


def interleaved(args, device) -> dict[str, list[float]]:
    """Per-step seconds of MetaDistil, the naive step, a live-KD step and the quiz pass, taken in
    turn on each batch in one process (each on its own copy of the same models): a machine whose
    speed drifts slows all four alike, so the per-batch ratios hold where sequential runs do not."""
    teacher, student, tokenizer, texts, labels = build(args.size, device, args.examples + args.quiz_size,
                                                       args.data)
    batches, quiz, encoded = batches_and_quiz(tokenizer, texts, labels, args, device)
    steps = {}
    for method in TURNS:
        t, s = copy.deepcopy(teacher), copy.deepcopy(student)
        quiz_own = quiz  # inputs only: no method writes into them
        steps[method] = (make_step(method, t, s, tokenizer, encoded, quiz_own, device, len(batches) * 2,
                                   args.meta_every), s)
    seconds: dict[str, list[float]] = {m: [] for m in TURNS}
    with precision.applied(args.precision, device):
        for index, batch in enumerate(batches[:args.warmup] + batches):
            order = TURNS[index % len(TURNS):] + TURNS[:index % len(TURNS)]  # no method always first
            for method in order:
                step, s = steps[method]
                s.train()
                _sync(device)
                started = time.perf_counter()
                step(batch)
                _sync(device)
                if index >= args.warmup:
                    seconds[method].append(time.perf_counter() - started)
    return seconds


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "minilm", "real"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=1024, help="examples per timed epoch")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quiz-size", type=int, default=100,
                        help="quiz examples per meta step (100: the whole quiz, as the official code; "
                        "fewer: what train.quiz_batch_size does)")
    parser.add_argument("--meta-every", type=int, default=1,
                        help="train.meta_every: a meta step every k steps (the others are live-KD steps)")
    parser.add_argument("--data", type=Path, default=offline_folder(),
                        help="the offline data folder, holding sst2/train.tsv (default: $METADISTIL_DATA)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="train.precision: the arithmetic training runs in "
                             "(trainers/engine/precision.py)")
    parser.add_argument("--only", choices=METHODS, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.data is None:
        parser.error("--data: no offline data folder; pass one or set METADISTIL_DATA")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.only:
        print(json.dumps(time_method(args.only, args, device)))
        return
    if device.type == "cuda":  # one process: peak memory is measured per method by the allocator
        rows = [time_method(m, args, device) for m in METHODS]
    else:  # a child per method: the resident-set peak of one method cannot leak into the next
        rows = []
        for method in METHODS:
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", method],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    by = {r["method"]: r for r in rows}
    name = (torch.cuda.get_device_name() if device.type == "cuda"
            else f"{platform.processor() or platform.machine()} CPU")
    print(f"machine: {name}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s); "
          f"size={args.size}, batch {args.batch_size}, {args.examples} examples per epoch, "
          f"quiz of {args.quiz_size} per meta step, a meta step every {args.meta_every} step(s), "
          f"precision {args.precision}")
    print(f"teacher {rows[0]['teacher_params']:,} params → student {rows[0]['student_params']:,} params")
    print(f"{'method':<12} {'step ms':>9} {'examples/s':>11} {'epoch s':>8} {'setup s':>8} {'peak MB':>8}")
    for r in rows:
        print(f"{r['method']:<12} {r['step_ms']:>9.1f} {r['samples_per_s']:>11.1f} {r['epoch_s']:>8.2f} "
              f"{r['setup_s']:>8.2f} {r['peak_mb']:>8.1f}")
    md, kd_live, kd, ft = by["metadistil"], by["kd_live"], by["kd_cached"], by["finetune"]
    print(f"MetaDistil step / KD step (live teacher): {md['step_ms'] / kd_live['step_ms']:.2f}×  "
          f"(target ≤ 3×)")
    quiz = by["quiz_pass"]["step_ms"]
    floor = (kd_live["step_ms"] + quiz / args.meta_every) / kd_live["step_ms"]
    print(f"  lower bound for an exact MetaDistil step: a live-KD step (the real step does that work) "
          f"+ the quiz pass alone ({quiz:.1f} ms, {args.quiz_size} examples, every "
          f"{args.meta_every} step(s)) = {floor:.2f}× the KD step, before the pilot gradient, "
          f"the JVP and the teacher's backward")
    naive = by["naive"]
    turns = interleaved(args, device)
    med = {m: float(np.median(v)) * 1000 for m, v in turns.items()}
    vs_naive = [a / b for a, b in zip(turns["metadistil"], turns["naive"])]
    vs_floor = [a / (k + q) for a, k, q in zip(turns["metadistil"], turns["kd_live"], turns["quiz_pass"])]
    print(f"in turn on the same {len(vs_naive)} batches, one process (median step ms): "
          + ", ".join(f"{m} {v:.1f}" for m, v in med.items()))
    print(f"MetaDistil step / naive exact step (official style): {np.median(vs_naive):.2f}× "
          f"(median of per-batch ratios; quartiles {np.quantile(vs_naive, 0.25):.2f}–"
          f"{np.quantile(vs_naive, 0.75):.2f}; target ≤ 0.75×)")
    print(f"MetaDistil step / (live-KD step + quiz pass): {np.median(vs_floor):.2f}×  (1.00× = the floor "
          f"above); the floor / naive step: {np.median(vs_naive) / np.median(vs_floor):.2f}×")
    print(f"MetaDistil peak memory / naive step's peak memory: "
          f"{md['peak_mb'] / max(naive['peak_mb'], 1e-9):.2f}×  (target ≤ 1×)")
    print(f"MetaDistil peak memory / KD peak memory:  "
          f"{md['peak_mb'] / max(kd_live['peak_mb'], 1e-9):.2f}×  (target ≤ 2×)")
    print(f"KD epoch (cached logits) / fine-tune epoch: {kd['epoch_s'] / ft['epoch_s']:.2f}×  "
          f"(target ≤ 1.15×; the one-time logit pass took {kd['setup_s']:.2f} s)")


if __name__ == "__main__":
    main()
