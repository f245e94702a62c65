"""The report's search section from hand-built runs: search.md and the README's section with each
configuration's best sample and the runs stopped early, search.csv ranking every sample (best
first, values at full precision, a stopped run last with its own value), a plot per searched
value; a stopped list alone for a sweep without a search; nothing for a sweep with neither; an
MRPC search ranked by its recorded metric (F1 by default) and shown and named by its main one, F1."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from orchestrator.report.labels import SweepNames
from orchestrator.report.metrics import sweep_task
from orchestrator.report.reader import GroupKey, SweepData, TrialRun
from orchestrator.report.search import Objective, objective_of, rank
from orchestrator.report.search_section import plot_paths, search_frame, write_search

KD = GroupKey("kd", ("bert",), "distilbert")
FT = GroupKey("finetune", (), "bert")
LR = {0: 1.23456789e-4, 1: 3.3e-5}  # sample 1 is the better: 0.80 and 0.82 against 0.70 and 0.72


def _run(key, seed, sample=None, val=0.75, stopped=None) -> TrialRun:
    searched = () if sample is None else (("bert.lr", 2e-5), ("lr", LR[sample]))
    return TrialRun(f"{key.method}-s{sample}-{seed}-run", "", key, seed, 100 * val, 1, 2, "tiny",
                    f"t{sample}{seed}", 0, sample=sample, searched=searched,
                    last=(("val_accuracy", val),), stopped_at_epoch=stopped)


def _data(runs, stopped=()) -> SweepData:
    return SweepData("hunt", None, {}, None, tuple(runs), (), 0, stopped=tuple(stopped))


def _search():
    runs = [_run(FT, 0), _run(FT, 1), _run(KD, 0, 0, 0.70), _run(KD, 1, 0, 0.72), _run(KD, 0, 1, 0.80),
            _run(KD, 1, 1, 0.82)]
    data = _data(runs, [_run(KD, 2, 0, 0.55, stopped=1)])
    return rank(data, Objective()), SweepNames.of(run.key for run in runs)


def test_search_csv_ranks_every_sample_best_first_then_the_stopped_run():
    ranking, names = _search()
    frame = search_frame(ranking, names)
    kd = frame[frame["method"] == "kd"]
    assert kd["sample"].tolist() == [1, 0, 0]
    assert kd["rank"].tolist()[:2] == [1, 2] and pd.isna(kd["rank"].iloc[2])
    assert kd["status"].tolist() == ["finished", "finished", "stopped"]
    assert kd["metric_mean"].tolist() == pytest.approx([81.0, 71.0, 55.0])  # % of the last epoch's
    assert kd["searched.lr"].tolist() == [LR[1], LR[0], LR[0]]  # full precision
    assert kd["n"].tolist() == [2, 2, 1] and kd["seeds"].tolist() == ["0;1", "0;1", "2"]
    assert kd["stopped_at_epoch"].tolist()[2] == 1 and pd.isna(kd["metric_std"].iloc[2])
    assert list(frame.columns[12:14]) == ["searched.lr", "searched.bert.lr"]  # the student's first
    assert frame[frame["method"] == "finetune"]["sample"].isna().all()


def test_the_section_writes_its_files_and_says_what_is_missing(tmp_path):
    ranking, names = _search()
    files: list = []
    section = write_search(ranking, names, None, "the sweep run records no command and no space", tmp_path,
                           files)
    plots = [tmp_path / "plots" / "search_lr.png", tmp_path / "plots" / "search_bert.lr.png"]
    assert files == [tmp_path / "search.md", tmp_path / "search.csv", *plots]
    assert all(p.stat().st_size > 0 for p in files)
    assert section.startswith("## Search\n") and "2 sample(s) of 1 configuration(s)" in section
    assert "No draw reaches BERT (teacher)" in section
    assert "No space file written: the sweep run records no command and no space." in section
    assert "![lr](plots/search_lr.png)" in section and "![bert.lr](plots/search_bert.lr.png)" in section
    best = next(line for line in (tmp_path / "search.md").read_text().splitlines() if "KD BERT" in line)
    assert "| 1 | lr=3.3e-05, bert.lr=2e-05 | 81.00 ± 1.41 (n=2) |" in best  # 3 significant digits here
    assert "| 2 (1 run(s) stopped) | kd-s1-0-, kd-s1-1- |" in best  # samples ranked, and the best's runs
    stopped = next(line for line in section.splitlines() if "kd-s0-2" in line)
    assert "| 0 | 2 | 1 | 55.00 | kd-s0-2- |" in stopped  # run ids cut to 8 characters


def test_a_sweep_without_a_search_lists_its_stopped_runs_alone(tmp_path):
    data = _data([_run(KD, 0)], [_run(KD, 1, stopped=2)])
    files: list = []
    section = write_search(rank(data, Objective()), SweepNames.of([KD]), None, "", tmp_path, files)
    assert files == [tmp_path / "search.md"] and section.startswith("## Stopped early\n")
    assert "| KD BERT→DistilBERT | – | 1 | 2 | 75.00 |" in section


def test_a_sweep_with_neither_has_no_section(tmp_path):
    files: list = []
    assert write_search(rank(_data([_run(KD, 0)]), Objective()), SweepNames.of([KD]), None, "", tmp_path,
                        files) == ""
    assert files == [] and not list(tmp_path.iterdir())


def test_plot_names_keep_dots_and_replace_what_a_file_name_cannot_hold(tmp_path):
    ranking, _ = _search()
    odd = replace(ranking, ranked={KD: tuple(replace(c, runs=tuple(
        replace(r, searched=(("a b/c", 1.0),)) for r in c.runs)) for c in ranking.ranked[KD])}, stopped=())
    assert plot_paths(odd, tmp_path) == {"a b/c": tmp_path / "plots" / "search_a_b_c.png"}


def mrpc_runs() -> list[TrialRun]:
    """KD on MRPC, two samples of two seeds: sample 0 the better by accuracy (validation 0.80 and
    0.82, test 79 %), sample 1 by F1, MRPC's main metric (validation 0.85 and 0.87, test 86 %)."""
    scores = {0: ((0.80, 0.82), (0.70, 0.72), 0.79, 0.69), 1: ((0.70, 0.72), (0.85, 0.87), 0.71, 0.86)}
    return [TrialRun(f"kd-s{sample}-{seed}-run", "", KD, seed, 100 * test_acc, 1, 2, "tiny",
                     f"t{sample}{seed}", 0, sample=sample, searched=(("lr", LR[sample]),),
                     last=(("train_loss", 0.5), ("val_accuracy", val_acc[seed]), ("val_f1", val_f1[seed])),
                     tested=(("accuracy", test_acc), ("f1", test_f1)), task="mrpc")
            for sample, (val_acc, val_f1, test_acc, test_f1) in scores.items() for seed in (0, 1)]


def test_an_mrpc_search_is_ranked_shown_and_named_by_f1(tmp_path):
    runs = mrpc_runs()
    task = sweep_task(runs)
    objective = objective_of({"search_metric": "val_f1", "search_mode": "max"}, None, "", task)
    ranking = rank(_data(runs), objective)
    assert [c.sample for c in ranking.ranked[KD]] == [1, 0]
    assert objective_of({}, None, "", task).metric == "val_f1"  # MRPC's default: its main metric
    frame = search_frame(ranking, SweepNames.of([KD]))
    assert frame["metric"].tolist() == ["val_f1", "val_f1"]
    assert frame["metric_mean"].tolist() == pytest.approx([86.0, 71.0])
    assert frame["val_f1_mean"].tolist() == pytest.approx([86.0, 71.0])
    assert frame["test_f1_mean"].tolist() == pytest.approx([86.0, 69.0])
    assert not [c for c in frame.columns if "accuracy" in c]
    section = write_search(ranking, SweepNames.of([KD]), None, "no space", tmp_path, [])
    assert ("ranked by the last epoch's val_f1, mean over seeds, maximised (from the sweep run's "
            "tags)") in section
    assert "| Configuration | Best sample | Values | val_f1 (mean ± std, n) | Test F1 |" in section
    assert "| KD BERT→DistilBERT | 1 | lr=3.3e-05 | 86.00 ± 1.41 (n=2) | 86.00 ± 0.00 (n=2) |" in section
    assert "(3 significant digits here; F1 in %)" in section
    assert "### Validation F1 against each searched value" in section
    assert "accurac" not in section.lower()


def test_an_mrpc_search_that_optimised_accuracy_is_ranked_by_it_beside_f1(tmp_path):
    """A space may ask for val_accuracy on MRPC: its search optimised that, so it ranks; the
    section still shows F1, MRPC's main metric, beside it, as Tables 1–3 are headed by F1."""
    runs = mrpc_runs()
    tags = {"search_metric": "val_accuracy", "search_mode": "max"}
    ranking = rank(_data(runs), objective_of(tags, None, "", sweep_task(runs)))
    assert [c.sample for c in ranking.ranked[KD]] == [0, 1]
    frame = search_frame(ranking, SweepNames.of([KD]))
    assert frame["metric"].tolist() == ["val_accuracy", "val_accuracy"]
    assert frame["metric_mean"].tolist() == pytest.approx([81.0, 71.0])
    assert frame["val_f1_mean"].tolist() == pytest.approx([71.0, 86.0])
    section = write_search(ranking, SweepNames.of([KD]), None, "no space", tmp_path, [])
    assert "| Configuration | Best sample | Values | val_accuracy (mean ± std, n) | Test F1 |" in section
