"""The cost of ``resources.kernels: portable`` (``trainers/runtime/kernels.py``): one trial trained in a
fresh process, as a Ray Train worker would be, with the CPU's native kernels or the portable pin.

    python benchmarks/bench_kernels.py --trial roberta               # native kernels
    python benchmarks/bench_kernels.py --trial roberta --kernels portable
    python benchmarks/bench_kernels.py --trial metadistil --kernels portable

``roberta``: the default sweep's stage-1 tiny RoBERTa preset from scratch (lr 1e-3; 1,500 SST-2
phrases, fewer epochs than its 8 unless ``--epochs 8``); ``metadistil``: MetaDistil from the
pretrained MiniLM to its layers {0, 5} (the default sweep's settings, ``--train-size`` phrases,
one epoch). The pin is set in this process's environment and the trial runs in a child process,
so it is in place before torch loads. Prints one JSON line: the trial, the setting, torch's kernel
path, the training seconds (build and loop, imports excluded), the test accuracy and a digest of
the student's weights. To compare, run both settings in turn several times (A B A B ...), e.g.
under ``/usr/bin/time``, and quote medians: one run says little on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import hashlib, json, shutil, sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(1)  # the default sweep's one CPU per worker
from trainers.config import DataConfig, TrainConfig
from trainers.runtime.kernels import environment
from trainers.engine.loop import Trial, run
from trainers.models.refs import packaged_dir
trial_name, train_size, epochs, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = DataConfig(source=source, train_size=train_size, quiz_size=50, test_size=200)
if trial_name == "roberta":
    config = TrainConfig(method="finetune", student="roberta", data=data, epochs=epochs, lr=1e-3)
else:
    minilm = str(packaged_dir("minilm"))
    config = TrainConfig(method="metadistil", student=f"{minilm}@2", teachers=(minilm,), data=data,
                         epochs=epochs, lr=1e-4, pilot_lr=1e-4, teacher_lr=1e-5)
folder = Path(tempfile.mkdtemp(prefix="bench-kernels-"))
started = time.perf_counter()
trial = Trial.build(config, cache_dir=folder / "cache", device=torch.device("cpu"))
result = run(trial, report=lambda e, m, f: shutil.rmtree(f), scratch_dir=folder / "scratch")
seconds = time.perf_counter() - started
shutil.rmtree(folder, ignore_errors=True)
weights = b"".join(p.detach().numpy().tobytes() for p in result.student.model.parameters())
env = environment()
print(json.dumps({"trial": trial_name, "kernels": env["env.kernels"],
                  "cpu_capability": env["env.cpu_capability"], "seconds": round(seconds, 2),
                  "test_accuracy": result.final["test_accuracy"],
                  "weights": hashlib.sha256(weights).hexdigest()[:16]}))
"""


def main() -> int:
    from trainers.data.source import default_source  # the spaces' default: one place says where data lies
    from trainers.runtime import kernels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", choices=("roberta", "metadistil"), default="roberta")
    parser.add_argument("--kernels", choices=kernels.SETTINGS, default=kernels.NATIVE)
    parser.add_argument("--train-size", type=int, default=None,
                        help="SST-2 phrases (roberta: 1500, metadistil: 300)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (roberta: 2, metadistil: 1)")
    parser.add_argument("--data", default=default_source("sst2"),
                        help="an SST-2 folder or hub (default: a space's)")
    args = parser.parse_args()
    train_size = args.train_size or (1500 if args.trial == "roberta" else 300)
    epochs = args.epochs or (2 if args.trial == "roberta" else 1)
    env = {k: v for k, v in os.environ.items() if k not in (*kernels.KERNEL_VARS, kernels.SETTING_ENV)}
    kernels.pin(args.kernels, env)
    done = subprocess.run([sys.executable, "-c", CHILD, args.trial, str(train_size), str(epochs), args.data],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        return done.returncode
    print(done.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
