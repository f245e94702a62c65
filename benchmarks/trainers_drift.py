"""Do two versions of ``trainers/`` train the same numbers? Runs small single-worker fp32 SST-2
trials of the recipe comparison's kind (``search_spaces/recipes_compare.yaml``: all-MiniLM-L6-v2 →
its layers 0 and 5, fine-tune, KD and MetaDistil under the default and the official recipe, 2
epochs, the quiz of 100, max length 128) with each version's trainers, each in its own process,
and prints per trial whether the per-epoch metrics, the test outputs and the student's weights
agree bit for bit, and the largest difference of a test probability. Scaled down: 48 training and
64 test phrases, the teacher MiniLM with a fresh head rather than a fine-tuned one.

    git archive 64fb7b8 trainers | tar -x -C /tmp/old    # the trainers the comparison ran on
    python benchmarks/trainers_drift.py /tmp/old .

Both versions must have the package layout of c707b22 (``trainers/engine/loop.py``…): a version from
before that regroup imports flat modules (``loop.py`` right under ``trainers/``) and is compared by this
script as it stood then (``git show b7971ec:benchmarks/trainers_drift.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainers.data.source import default_source  # noqa: E402

# Written for the older trainers too: only settings both versions know.
TRIALS = r"""
import hashlib, json, os, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
torch.set_num_threads(1)
import trainers
assert Path(trainers.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), trainers.__file__
from trainers.config import DataConfig, TrainConfig
from trainers.engine.loop import Trial, run
from trainers.models.refs import packaged_dir

minilm = str(packaged_dir("minilm"))
data = DataConfig(source=sys.argv[2], train_size=48, quiz_size=100, test_size=64, max_length=128)
recipes = {"default": dict(epochs=2, lr=1e-4, pilot_lr=1e-4),
           "official": dict(epochs=2, lr=5e-5, batch_size=8, warmup_ratio=0.0, weight_decay=0.0,
                            soft_loss="mse", temperature=5.0, alpha=0.5, pkd_weight=100.0,
                            pkd_layers="skip", pilot_lr=5e-5, teacher_lr=1e-5, teacher_weight_decay=0.0)}
root, out = Path(tempfile.mkdtemp()), {}
for name, recipe in recipes.items():
    for method in ("finetune", "kd", "metadistil"):
        teachers = () if method == "finetune" else (minilm,)
        config = TrainConfig(method=method, student=minilm + "@2", teachers=teachers, data=data, **recipe)
        trial = Trial.build(config, cache_dir=root / "cache", device=torch.device("cpu"))
        result = run(trial, report=lambda e, m, f: shutil.rmtree(f), scratch_dir=root / name / method)
        weights = b"".join(p.detach().numpy().tobytes() for p in result.student.model.parameters())
        out[f"{method} [{name}]"] = {
            "history": [{k: v for k, v in h.items() if k not in ("epoch_time_s", "samples_per_s")}
                        for h in result.history],
            "predictions": result.test_predictions.tolist(), "prob": result.test_prob_positive.tolist(),
            "weights": hashlib.sha256(weights).hexdigest()}
shutil.rmtree(root)
print(json.dumps(out))
"""


def _trials(trainers_root: str) -> dict:
    done = subprocess.run([sys.executable, "-c", TRIALS, str(Path(trainers_root).resolve()),
                           default_source("sst2")],
                          capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    first, second = _trials(sys.argv[1]), _trials(sys.argv[2])
    print(f"{'trial':24} {'metrics':>8} {'test':>8} {'weights':>8} {'max |Δ prob|':>13}")
    for trial, a in first.items():
        b = second[trial]
        same = ["same" if a[k] == b[k] else "differ" for k in ("history", "predictions", "weights")]
        gap = float(np.abs(np.array(a["prob"]) - np.array(b["prob"])).max())
        print(f"{trial:24} {same[0]:>8} {same[1]:>8} {same[2]:>8} {gap:>13.1e}")


if __name__ == "__main__":
    main()
