"""``--dry-run``: the plan and its time estimate, printed without starting Ray or training; the
summary's lines, headed by the task's main metric."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import yaml

from orchestrator import sweep
from orchestrator.paths import DEFAULT_SPACE
from orchestrator.run.stages import Outcome
from orchestrator.run.stopped import Stop
from tests.conftest import ROOT
from trainers.record.layout import StorageLayout


def test_default_space_dry_run_plans_8_trials_within_ten_minutes(tmp_path, capsys):
    code = sweep.main(["--space", str(DEFAULT_SPACE), "--dry-run",
                       "--storage", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == 0 and "8 trials in 2 stage(s)" in out
    assert "stage 1 (fine-tune teachers and baselines): 3 trials, 0 already done" in out
    minutes = int(re.search(r"estimate for this machine \(.*\): ~(\d+) min", out).group(1))
    assert 1 <= minutes <= 10, out
    assert not (tmp_path / "store").exists()  # a dry run writes nothing


def test_paper_dry_run_prints_the_whole_plan_and_starts_nothing(tmp_path, capsys):
    code = sweep.main(["--space", str(ROOT / "search_spaces" / "paper.yaml"), "--dry-run",
                       "--storage", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == 0 and "66 trials in 2 stage(s)" in out
    assert "recipe official: lr=5e-05, batch_size=8, warmup_ratio=0.0, weight_decay=0.0" in out
    assert "pkd_weight=100.0, pkd_layers=skip" in out and "data.max_length=128" in out
    lines = re.findall(r"^  [0-9a-f]{8}  (\S+) +(\d+) ep  train", out, re.M)
    assert len(lines) == 66  # every trial, each with its status
    teachers = [name for name, _ in lines if name.startswith(("bert__", "roberta__"))]
    assert len(teachers) == 9  # BERT, RoBERTa and a second BERT (for [bert, bert]) per seed
    assert all(epochs == ("3" if name in teachers else "15") for name, epochs in lines)
    assert "estimate for this machine" not in out  # hub models are not estimated
    assert not (tmp_path / "store").exists()


def test_random_search_dry_run_lists_the_samples_before_the_stages(tmp_path, capsys):
    space = tmp_path / "search.yaml"
    space.write_text(yaml.safe_dump({
        "name": "search", "seeds": [0, 1], "data": {"train_size": 200, "quiz_size": 20, "test_size": 50},
        "train": {"epochs": 2, "lr": {"loguniform": [1.0e-5, 1.0e-3]},
                  "soft_loss": {"choice": ["kl", "mse"]}},
        "teacher_train": {"lr": 1.0e-4}, "search": {"algorithm": "random", "num_samples": 3, "seed": 7},
        "grid": [{"methods": ["kd"], "teachers": [["bert"]], "students": ["distilbert"]}]}))
    code = sweep.main(["--space", str(space), "--dry-run", "--storage", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == 0 and "8 trials in 2 stage(s)" in out  # 2 teachers (one per seed), 3 samples × 2 seeds
    assert "random search: 3 sample(s) (search.seed 7) × 2 seed(s); metric val_accuracy (max)" in out
    assert "train.lr ~ loguniform(1e-05, 0.001); train.soft_loss ~ choice(kl, mse)" in out
    samples = re.findall(r"^  s(\d)  train\.lr=(\S+)  train\.soft_loss=(kl|mse)$", out, re.M)
    assert [s[0] for s in samples] == ["0", "1", "2"] and out.index("  s0  ") < out.index("stage 1")
    assert all(lr == f"{float(lr):.3g}" for _, lr, _ in samples)  # 3 significant digits
    assert len(re.findall(r"distilbert_from_bert__kd__s[012]__seed[01]", out)) == 6
    assert not (tmp_path / "store").exists()


def test_dry_run_estimate_runs_as_many_trials_at_a_time_as_the_sweep_would(tmp_path, capsys, monkeypatch):
    """The estimate's slots are the sweep's own count (``stages.concurrency``): the machine's
    cores, under ``--max-concurrent``."""
    monkeypatch.setattr(sweep.os, "cpu_count", lambda: 4)

    def estimate(*extra: str) -> tuple[int, int]:
        code = sweep.main(["--space", str(DEFAULT_SPACE), "--dry-run", "--storage", str(tmp_path / "store"),
                           *extra])
        found = re.search(r"estimate for this machine \(4 cores.*, (\d+) trial\(s\) at a time\): ~(\d+) min",
                          capsys.readouterr().out)
        assert code == 0 and found
        return int(found.group(1)), int(found.group(2))

    (slots, minutes), (one_slot, one_at_a_time) = estimate(), estimate("--max-concurrent", "1")
    assert slots == 4 and one_slot == 1 and one_at_a_time > minutes


@pytest.mark.parametrize("task, header, cells", [
    ("sst2", ("val acc", "test acc"), (("0.7000", "0.6000"), ("0.5500", "-"))),
    ("mrpc", ("val f1", "test f1"), (("0.9000", "0.8000"), ("0.6500", "-"))),
    ("cola", ("val mcc", "test mcc"), (("0.3000", "0.2000"), ("-", "-"))),
])
def test_the_summary_shows_the_tasks_main_metric(tmp_path, capsys, task, header, cells):
    """SST-2's lines as ever; MRPC's F1 on validation and test (not its accuracy); a stopped
    trial's validation value where it stopped; '-' where a value was not logged."""
    layout = StorageLayout(tmp_path)
    done, stopped, failed = (SimpleNamespace(key=k, name=f"{k}__seed0") for k in ("done", "halt", "bad"))
    layout.model_dir("done").mkdir(parents=True)
    layout.result_file("done").write_text(json.dumps({
        "history": [{"val_accuracy": 0.1, "val_f1": 0.1}, {"val_accuracy": 0.7, "val_f1": 0.9,
                                                          "val_matthews": 0.3, "train_loss": 0.4}],
        "final": {"test_accuracy": 0.6, "test_f1": 0.8, "test_matthews": 0.2}}))
    Stop(1, "val_f1", {"val_accuracy": 0.55, "val_f1": 0.65, "train_loss": 0.5}).write(layout, "halt")
    outcomes = [Outcome(done, "trained"), Outcome(stopped, "stopped"), Outcome(failed, "failed")]
    sweep.print_summary(outcomes, layout, 60.0, task)
    lines = capsys.readouterr().out.splitlines()
    rows = [("trial", "status", *header), ("done__seed0", "trained", *cells[0]),
            ("halt__seed0", "stopped", *cells[1]), ("bad__seed0", "failed", "-", "-")]
    assert lines[1:5] == [f"{name:<60} {status:<8} {val:>8} {test:>8}" for name, status, val, test in rows]
    assert lines[5].startswith("3 trials: 1 trained, 0 reused, 1 stopped early, 1 failed · 1.0 min")
