"""What each run's numbers depend on, as its worker recorded it (``env.*`` tags,
``trainers/runtime/kernels.py``): ``environment.csv`` (one line per run) and the README's short
"Environment" section (one line per distinct CPU and kernel path, with its run count).

Runs on one CPU kernel path are bit-identical from one fresh sweep to the next; two kernel paths
(``cpu_capability`` and ``kernel_vars`` apart) may differ in the last bits, which a chaotic trial
grows into another model, unless every run says ``kernels: portable``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from orchestrator.paths import shown
from orchestrator.report.reader import TrialRun
from trainers.runtime.kernels import TAG_PREFIX

FIELDS = ("cpu", "machine", "cpu_capability", "threads", "kernels", "kernel_vars", "torch", "transformers",
          "teacher_weights")
# What decides the kernel path, and so the bits: one README line per distinct value.
PATH_FIELDS = ("cpu", "cpu_capability", "threads", "kernels", "kernel_vars", "torch")
NOT_RECORDED = "not recorded"


def environment_of(run: TrialRun) -> dict[str, str]:
    recorded = dict(run.environment)
    found = {name: recorded.get(TAG_PREFIX + name, NOT_RECORDED if name != "teacher_weights" else "")
             for name in FIELDS}
    return {**found, "teacher_weights": _weights_shown(found["teacher_weights"])}


def _weights_shown(digests: str) -> str:
    """``<teacher folder>=<digest>,…`` with each folder as a committed file may name it (the worker
    records the absolute folder: the packaged model's lies in the machine's virtual environment)."""
    def one(item: str) -> str:
        folder, equals, digest = item.rpartition("=")
        return f"{shown(folder)}={digest}" if equals and folder.startswith("/") else item

    return ",".join(one(item) for item in digests.split(",")) if digests else digests


def write_environment(runs: Sequence[TrialRun], path: Path) -> Path:
    frame = pd.DataFrame([{"run_name": run.run_name, "run_id": run.run_id, **environment_of(run)}
                          for run in runs], columns=["run_name", "run_id", *FIELDS])
    frame.to_csv(path, index=False)
    return path


def environment_markdown(runs: Sequence[TrialRun]) -> str:
    """The README's section: the kernel paths the runs ran on, and what holds across them."""
    paths = Counter(tuple(environment_of(run)[name] for name in PATH_FIELDS) for run in runs)
    lines = []
    for values, count in sorted(paths.items(), key=lambda item: -item[1]):
        field = dict(zip(PATH_FIELDS, values))
        if field["cpu"] == NOT_RECORDED:
            lines.append(f"- {count} run(s): not recorded (logged before runs recorded their CPU)")
            continue
        lines.append(f"- {count} run(s): {field['cpu']}, torch {field['torch']} on its "
                     f"{field['cpu_capability']} kernels, {field['threads']} thread(s), kernels "
                     f"{field['kernels']}" + ("" if field["kernel_vars"] == "none" else
                                              f" (`{field['kernel_vars']}`)"))
    portable = all(environment_of(run)["kernels"] == "portable" for run in runs)
    where = ("every run pinned the portable kernel path, which another x86-64 CPU with AVX2 should "
             "run bit for bit alike (shown on emulated CPUs, not yet on two real ones)" if portable else
             "bit-identical when re-run on the same CPU kernel path; another CPU (AVX-512 against "
             "AVX2, Intel against AMD) may change the last bits, which a tiny preset trained from "
             "scratch grows into another model (`resources.kernels: portable` pins the path)")
    return ("## Environment\n\nWhat each run's numbers depend on, as its worker recorded it: "
            + where + ".\n\n" + "\n".join(lines)
            + "\n\nFiles: [environment.csv](environment.csv) (per run, with each teacher's weights "
              "digest)\n")
