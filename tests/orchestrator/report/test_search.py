"""A random search's report: runs group by configuration and sample, each table row is its
configuration's best sample by the mean over seeds, runs stopped early enter no mean and are
listed, search.csv ranks every sample, and the space files written re-run the best exactly.

The sweeps are planned by the planner itself from a space file (tags, names and content keys as a
sweep writes them) and logged into a real MLflow store; only the accuracies are made up."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from orchestrator.check.preflight import resolve_models
from orchestrator.plan.planner import Plan, build_plan
from orchestrator.report.best_space import BEST_SEEDS, SweepSpace, check_draws, find_space
from orchestrator.report.build import ReportResult, build_report
from orchestrator.report.metrics import SST2, TaskMetrics
from orchestrator.report.reader import load_sweep
from orchestrator.report.search import Objective, objective_of
from orchestrator.spec.space import SweepSpec, parse_spec
from tests.orchestrator.report.store import (
    PARTIAL_SPECS,
    PNG_MAGIC,
    Store,
    add_sweep,
    log_run,
    log_trial,
    make_store,
    markdown_rows,
    read_csv,
)

SPACE = {"name": "hunt", "seeds": [0, 1],
         "data": {"source": "data/sst2", "train_size": 100, "quiz_size": 10, "test_size": 200},
         "train": {"epochs": 3, "lr": {"loguniform": [1.0e-5, 1.0e-2]}, "alpha": {"uniform": [0.2, 0.8]}},
         "teacher_train": {"lr": 1.0e-4},  # pinned: no draw reaches the teacher
         "per_model": {"bert": {"epochs": 4}},  # a file whose grid trains no BERT must drop it
         "grid": [{"methods": ["finetune"], "students": ["distilbert"]},
                  {"methods": ["kd", "metadistil"], "teachers": [["bert"]], "students": ["distilbert"]}],
         "search": {"algorithm": "random", "num_samples": 3, "seed": 0},
         "resources": {"workers_per_trial": 1, "cpus_per_worker": 1}}
# Test examples wrong for (method, student, sample) at seeds 0 and 1; None: MetaDistil s0's seed 1
# is stopped after epoch 1. Lower is better in every metric (store.log_run).
SPLIT = {("finetune", "bert", None): (6, 7),
         ("finetune", "distilbert", 0): (14, 15), ("finetune", "distilbert", 1): (16, 17),
         ("finetune", "distilbert", 2): (18, 19),
         # KD: s0 has the best single run (10) but s2 the best mean (21 against 25).
         ("kd", "distilbert", 0): (10, 40), ("kd", "distilbert", 1): (30, 30),
         ("kd", "distilbert", 2): (20, 22),
         # MetaDistil: s0's surviving seed is the best run of all, but a seed of it was stopped.
         ("metadistil", "distilbert", 0): (5, None), ("metadistil", "distilbert", 1): (12, 14),
         ("metadistil", "distilbert", 2): (30, 30)}
ONE = {**{key: (20, 20) for key in SPLIT}, ("finetune", "bert", None): (6, 7),
       ("finetune", "distilbert", 1): (14, 15), ("kd", "distilbert", 1): (10, 12),
       ("metadistil", "distilbert", 1): (8, 9)}
STOPPED_WRONG = 50


@dataclasses.dataclass(frozen=True)
class Hunt:
    store: Store
    space: Path
    spec: SweepSpec
    plan: Plan


def _plan(spec: SweepSpec, path: Path) -> Plan:
    return build_plan(spec, data_fingerprint="f0", storage=Path("/nonexistent-store"),
                      models=resolve_models(spec, path, strict=False))


def _add_search_sweep(hunt: Hunt, sweep: str, wrong: dict) -> None:
    client = hunt.store.client
    experiment_id = client.create_experiment(
        sweep, artifact_location=(hunt.store.root / "artifacts" / sweep).as_uri())
    parent = client.create_run(experiment_id, run_name=sweep, tags={
        "kind": "sweep", "sweep": sweep, "space": hunt.space.stem,
        "command": f"python -m orchestrator.sweep --space {hunt.space} --name {sweep}"})
    for trial in hunt.plan.trials:
        tags = {**trial.tags, "sweep": sweep, "mlflow.parentRunId": parent.info.run_id}
        seeds = wrong[(trial.config.method, trial.student, trial.sample)]
        count = seeds[trial.config.seed]
        log_run(hunt.store, experiment_id, trial.name, tags, STOPPED_WRONG if count is None else count,
                "KILLED" if count is None else "FINISHED", stopped_at=1 if count is None else None)
    client.set_terminated(parent.info.run_id)


@pytest.fixture(scope="module")
def hunt(tmp_path_factory: pytest.TempPathFactory, empty_database: Path) -> Hunt:
    root = tmp_path_factory.mktemp("hunt")
    space = root / "spaces" / "hunt.yaml"
    space.parent.mkdir()
    space.write_text(yaml.safe_dump(SPACE), encoding="utf-8")
    spec = parse_spec(yaml.safe_load(space.read_text()), str(space))
    hunt = Hunt(make_store(root / "mlflow", empty_database), space, spec, _plan(spec, space))
    _add_search_sweep(hunt, "hunt_split", SPLIT)
    _add_search_sweep(hunt, "hunt_one", ONE)
    return hunt


@pytest.fixture(scope="module")
def split(hunt: Hunt, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return build_report(hunt.store.client, "hunt_split", tmp_path_factory.mktemp("split_out"))


def _mean_accuracy(*wrong: int) -> str:
    return f"{sum(100 * (200 - w) / 200 for w in wrong) / len(wrong):.2f}"


def test_rows_are_each_configurations_best_sample_by_the_mean(split: ReportResult) -> None:
    table1 = read_csv(split.out_dir / "table1.csv").set_index("method")
    runs = read_csv(split.out_dir / "runs.csv")
    for label, sample, wrong in (("KD BERT→DistilBERT", 2, (20, 22)),
                                 ("MetaDistil BERT→DistilBERT", 1, (12, 14)),
                                 ("DistilBERT (fine-tuned)", 0, (14, 15))):
        row = table1.loc[label]
        # Two seeds of one sample, never six runs of three samples averaged as seeds.
        assert (row.n, row.seeds, f"{float(row.accuracy_mean):.2f}") == ("2", "0;1", _mean_accuracy(*wrong))
        names = runs[(runs["table"] == "table1") & (runs["row"] == label)]["run_name"]
        assert all(f"__s{sample}__seed" in name for name in names), list(names)
    assert table1.loc["BERT (teacher)", "n"] == "2"  # no draw reaches it: one trial per seed
    assert not [w for w in split.warnings if "not FINISHED" in w]  # a stopped run is no failure
    readme = (split.out_dir / "README.md").read_text(encoding="utf-8")
    assert "Search: each row is its configuration's best sample by the last epoch's val_accuracy" in readme


def test_the_recorded_metric_ranks_and_the_default_is_the_tasks_main_one() -> None:
    """What the sweep recorded ranks as it is (it is what Optuna and ASHA optimised): MRPC's
    val_f1, or val_accuracy where a space asked for it; without a record, the space's search block
    read with its task, else the task's main validation metric (SST-2's val_accuracy, as ever)."""
    mrpc = TaskMetrics("mrpc", "MRPC", ("f1", "accuracy"))
    tagged = {"search_metric": "val_accuracy", "search_mode": "max"}
    assert objective_of({**tagged, "search_metric": "val_f1"}, None, "", mrpc) == Objective(
        "val_f1", "max", "the sweep run's tags")
    assert objective_of(tagged, None, "", mrpc) == Objective("val_accuracy", "max", "the sweep run's tags")
    assert objective_of({}, None, "", mrpc) == Objective("val_f1")
    space = parse_spec({"name": "m", "seeds": [0], "data": {"task": "mrpc"},
                        "grid": [{"methods": ["finetune"], "students": ["tinybert"]}]}, "m.yaml")
    assert objective_of({}, space.search, "m.yaml", mrpc) == Objective("val_f1", "max", "m.yaml")
    assert objective_of(tagged, None, "", SST2) == Objective("val_accuracy", "max", "the sweep run's tags")
    assert objective_of({}, None, "", SST2) == Objective()
    assert objective_of({"search_metric": "train_loss", "search_mode": "min"}, None, "", mrpc) == Objective(
        "train_loss", "min", "the sweep run's tags")


def test_search_csv_ranks_every_sample_and_lists_the_stopped_run(hunt: Hunt, split: ReportResult) -> None:
    frame = read_csv(split.out_dir / "search.csv")
    assert set(frame["configuration"]) == {"DistilBERT (fine-tuned)", "KD BERT→DistilBERT",
                                           "MetaDistil BERT→DistilBERT"}
    kd = frame[frame["configuration"] == "KD BERT→DistilBERT"]
    assert list(kd["sample"]) == ["2", "0", "1"] and list(kd["rank"]) == ["1", "2", "3"]
    best = kd.iloc[0]
    assert (best.status, best.metric, best.n, best.seeds) == ("finished", "val_accuracy", "2", "0;1")
    assert float(best.metric_mean) == pytest.approx(100 * (0.9 - 0.021))  # last epoch, mean of 2 seeds
    assert f"{float(best.test_accuracy_mean):.2f}" == _mean_accuracy(20, 22)
    drawn = hunt.spec.sample_values(2)
    assert float(best["searched.lr"]) == drawn["train.lr"]  # every digit of the draw
    assert float(best["searched.alpha"]) == drawn["train.alpha"]
    assert len(best.run_ids.split(";")) == 2
    meta = frame[frame["configuration"] == "MetaDistil BERT→DistilBERT"]
    # s0's survivor is the best run, but with a seed stopped it ranks after the complete samples.
    assert list(meta["sample"]) == ["1", "2", "0", "0"] and list(meta["rank"]) == ["1", "2", "3", ""]
    survivor, stopped = meta.iloc[2], meta.iloc[3]
    assert (survivor.n, survivor.seeds, survivor.status) == ("1", "0", "finished")
    assert (stopped.status, stopped.seeds, stopped.stopped_at_epoch) == ("stopped", "1", "1")
    assert float(stopped.metric_mean) == pytest.approx(100 * (0.7 - STOPPED_WRONG / 1000))
    assert stopped.test_accuracy_mean == ""


def test_readme_shows_the_best_the_stopped_run_and_the_plots(split: ReportResult) -> None:
    readme = (split.out_dir / "README.md").read_text(encoding="utf-8")
    assert "## Search" in readme and "3 sample(s) of 3 configuration(s)" in readme
    best = markdown_rows(split.out_dir / "table1.md")  # the best table shares the labels: cut it out
    assert ("| KD BERT→DistilBERT | 2 | alpha=0.565, lr=0.000501 | 87.90 ± 0.14 (n=2) | 89.50 ± 0.71 (n=2) "
            "| 3 |") in readme and best["KD BERT→DistilBERT"][1] == "89.50 ± 0.71 (n=2)"
    assert "| 3 (1 run(s) stopped) |" in (split.out_dir / "search.md").read_text(encoding="utf-8")
    assert "No draw reaches BERT (teacher)" in readme
    assert "| MetaDistil BERT→DistilBERT | 0 | 1 | 1 | 65.00 |" in readme
    for param in ("lr", "alpha"):
        assert f"(plots/search_{param}.png)" in readme
        data = (split.out_dir / "plots" / f"search_{param}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def _best_runs(hunt: Hunt, result: ReportResult) -> dict[str, set[str]]:
    """Configuration → the trial keys of its best sample's runs (rank 1 in search.csv)."""
    frame = read_csv(result.out_dir / "search.csv")
    best = frame[frame["rank"] == "1"]
    client = hunt.store.client
    return {row.configuration: {client.get_run(run_id).data.tags["trial_key"]
                                for run_id in row.run_ids.split(";")} for row in best.itertuples()}


def _read_space(path: Path) -> SweepSpec:
    spec = parse_spec(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    assert spec.seeds == BEST_SEEDS and spec.search.algorithm == "grid" and not spec.distributions
    return spec


def test_best_samples_that_differ_get_one_exact_space_file_each(hunt: Hunt, split: ReportResult) -> None:
    out = split.out_dir
    assert not (out / "best_space.yaml").exists()
    files = {"DistilBERT (fine-tuned)": (out / "best_distilbert__finetune.yaml", 0),
             "KD BERT→DistilBERT": (out / "best_distilbert_from_bert__kd.yaml", 2),
             "MetaDistil BERT→DistilBERT": (out / "best_distilbert_from_bert__metadistil.yaml", 1)}
    best = _best_runs(hunt, split)
    readme = (out / "README.md").read_text(encoding="utf-8")
    for configuration, (path, sample) in files.items():
        spec = _read_space(path)
        assert spec.name == f"hunt_split-best-{path.stem.removeprefix('best_')}" and len(spec.grid) == 1
        drawn = hunt.spec.sample_values(sample)
        values = spec.train_spec("distilbert")
        assert (values.lr, values.alpha) == (drawn["train.lr"], drawn["train.alpha"])
        assert spec.train_spec("bert", teacher=True).lr == 1.0e-4
        assert spec.resources == hunt.spec.resources and spec.data.train_size == 100
        # The data folder the space named relative to itself, named relative to the report now.
        assert (out / spec.data.source).resolve() == (hunt.space.parent / "data/sst2").resolve()
        # Planned again, seeds 0 and 1 are the very trials that won (content keys), teachers and all.
        assert best[configuration] <= {trial.key for trial in _plan(spec, path).trials}
        assert f"`python -m orchestrator.sweep --space {path}`" in readme


def test_one_best_sample_gets_one_space_file_for_the_whole_grid(
        hunt: Hunt, tmp_path_factory: pytest.TempPathFactory) -> None:
    result = build_report(hunt.store.client, "hunt_one", tmp_path_factory.mktemp("one_out"))
    path = result.out_dir / "best_space.yaml"
    assert [p.name for p in result.out_dir.glob("best*.yaml")] == ["best_space.yaml"]
    spec = _read_space(path)
    assert spec.name == "hunt_one-best" and spec.grid == hunt.spec.grid
    drawn = hunt.spec.sample_values(1)
    assert spec.train_spec("distilbert").lr == drawn["train.lr"]
    planned = {trial.key for trial in _plan(spec, path).trials}
    assert set().union(*_best_runs(hunt, result).values()) <= planned
    readme = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert f"python -m orchestrator.sweep --space {path}\n" in readme
    assert path.read_text(encoding="utf-8").startswith("# Generated by `python -m orchestrator.report")


@pytest.mark.parametrize("change, why", [
    (lambda space: space.with_name("gone.yaml"), "its space file {path} is not there"),
    (None, "no longer draws "),
])
def test_a_space_changed_or_gone_since_the_sweep_writes_no_best_space(
        hunt: Hunt, tmp_path: Path, change: Callable[[Path], Path] | None, why: str) -> None:
    data = load_sweep(hunt.store.client, "hunt_split")
    if change is not None:
        path = change(hunt.space)
        data = dataclasses.replace(data, tags={**data.tags, "command": f"python -m orchestrator.sweep "
                                                                       f"--space {path}"})
        assert find_space(data) == (None, why.format(path=path))
        return
    reseeded = {**SPACE, "search": {**SPACE["search"], "seed": 1}}
    space = SweepSpace(tmp_path / "hunt.yaml", reseeded, parse_spec(reseeded, "hunt.yaml"))
    assert why in check_draws(space, data.runs)


def test_a_sweep_without_a_search_has_no_search_section(paper: ReportResult) -> None:
    out = paper.out_dir
    assert not [p.name for p in out.glob("search*")] + [p.name for p in out.glob("best*.yaml")]
    assert not list((out / "plots").glob("search_*"))
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "## Search" not in readme and "Stopped early" not in readme and "Search:" not in readme


def test_a_grid_sweep_lists_its_stopped_runs_and_keeps_them_out_of_the_means(
        hunt: Hunt, tmp_path: Path) -> None:
    """ASHA without a random search: no ranking, but a stopped run is still no seed of its row."""
    experiment_id = add_sweep(hunt.store, "asha_grid", PARTIAL_SPECS, (0,), {})
    log_trial(hunt.store, experiment_id, "", "asha_grid", PARTIAL_SPECS[2], 1, "KILLED", stopped_at=2)
    result = build_report(hunt.store.client, "asha_grid", tmp_path)
    assert markdown_rows(tmp_path / "table1.md")["MetaDistil BERT→DistilBERT"][1] == "95.00 (n=1)"
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "## Stopped early" in readme and "## Search" not in readme and not result.warnings
    assert "| MetaDistil BERT→DistilBERT | – | 1 | 2 | 78.90 |" in readme
    assert not (tmp_path / "search.csv").exists() and not list(tmp_path.glob("best*.yaml"))
