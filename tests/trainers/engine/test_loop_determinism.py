"""Two fresh runs of the same trial give the same numbers: every per-epoch metric, the test
predictions and their probabilities, bit for bit. Each run is its own process with its own empty
cache (a new BPE for the RoBERTa preset, new token caches), as two fresh sweeps are; the trial is
the one that once differed by a test example between two sweeps: MetaDistil from two teachers that
tokenize differently, here with noise too."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import ROOT, SST2

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

SCRIPT = """
import hashlib, json, shutil, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from trainers.config import DataConfig, TrainConfig
from trainers.engine.loop import Trial, run
cache, scratch = Path(sys.argv[1]) / "cache", Path(sys.argv[1]) / "scratch"
data = DataConfig(source=sys.argv[2], train_size=300, quiz_size=20, test_size=100, max_length=32)
config = TrainConfig(method="metadistil", student="distilbert", teachers=("bert", "roberta"), data=data,
                     epochs=2, lr=1e-3, pilot_lr=1e-3, teacher_lr=1e-4, noise_p=0.1, warmup_epochs=1)
trial = Trial.build(config, cache_dir=cache, device=torch.device("cpu"))
result = run(trial, report=lambda e, m, f: shutil.rmtree(f), scratch_dir=scratch)
history = [{k: v for k, v in h.items() if k not in ("epoch_time_s", "samples_per_s")} for h in result.history]
digest = hashlib.sha256(result.test_predictions.tobytes() + result.test_prob_positive.tobytes()).hexdigest()
print(json.dumps({"history": history, "final": result.final, "test": digest}))
"""


def _fresh_run(folder) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(SST2)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_fresh_runs_agree_bit_for_bit(tmp_path):
    # Independent processes on one thread each: side by side, on both of CI's cores.
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(_fresh_run, (tmp_path / "a", tmp_path / "b"))
    assert first["history"][1]["quiz_loss"] > 0  # the meta steps ran
    assert first == second
