"""``python -m orchestrator.sweep``: search space → plan → one Ray Tune run per stage → report.

Flow: validate everything (space, models, data, storage, tracking store, Ray address) before
starting anything; plan the trials; start or attach to Ray; make the MLflow experiment, the sweep's
parent run and one child run per trial; run each stage's unfinished trials as a Tune run of Ray
Train trainers; print a summary; regenerate the report. Re-running the same command resumes:
finished trials are skipped (their folder under the storage holds ``result.json``) and an
interrupted trial continues from its last epoch checkpoint.

Exit codes: 0 every trial finished, 1 some trials failed (listed) or Ray did not start, 2 bad input,
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator import interrupts, preflight
from orchestrator.estimate import SWEEP_OVERHEAD_S, makespan, trial_seconds
from orchestrator.local_ray import print_ray, start_ray
from orchestrator.paths import DEFAULT_SPACE, DEFAULT_STORAGE, DEFAULT_TRACKING_URI, RESULTS_DIR, artifact_root
from orchestrator.plan import Plan, PlannedTrial, build_plan, is_done, model_dir
from orchestrator.runs import check_reachable, check_resumable, redact
from orchestrator.spec import SweepSpec, load_spec
from orchestrator.storage import check_shared
from trainers.artifacts import RESULT_FILE
from trainers.config import ConfigError
from trainers.errors import UserError

# The Tune wrapper only waits on its trainer, so it must hold no CPU: with even 0.01 CPU each, two
# wrappers on a 2-CPU machine leave 1.98 CPUs and the second trainer's 1-CPU worker waits for the
# first trial to end. Tune refuses a request of nothing ({"cpu": 0}); one byte of Ray's logical
# memory resource is a request that costs nothing.
TRIAL_RESOURCES = {"cpu": 0, "memory": 1}
@dataclass
class Outcome:
    trial: PlannedTrial
    status: str  # trained | reused | failed
    error: str = ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search-space YAML (default: %(default)s)")
    parser.add_argument("--name", help="sweep name (default: the space's name); one MLflow experiment per name")
    parser.add_argument("--address", help="attach to a running Ray cluster (host:port, ray://host:10001 or auto)")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
                        help="MLflow tracking URI (default: a SQLite store in results/)")
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE,
                        help="Ray storage, finished trials and caches; shared on a multi-node cluster (default: %(default)s)")
    parser.add_argument("--max-concurrent", type=int, help="cap on trials running at once (default: what the resources allow)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit; starts nothing")
    parser.add_argument("--resume", action="store_true",
                        help="only continue a sweep that exists in the tracking store (a mistyped name fails instead of starting anew)")
    parser.add_argument("--report-dir", type=Path, help="where the report goes (default: results/<sweep>)")
    parser.add_argument("--no-report", action="store_true", help="skip regenerating the report at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec, plan, storage = _prepare(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print_plan(spec, plan, storage)
        return 0
    try:
        preflight.check_ray_address(args.address)
        preflight.check_storage(storage)
        check_reachable(args.tracking_uri)
        if not args.address:  # the local cluster is this machine: a trial too big fails before Ray starts
            preflight.check_cpus(spec, os.cpu_count() or 1, local=True)
        if args.resume:
            check_resumable(args.tracking_uri, spec.name)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with interrupts.landing() as caught:
        try:
            return _run(args, spec, plan, storage, caught)
        except KeyboardInterrupt:  # before the stages (Ray starting, the checks): no trial started
            caught()
            print(f"\ninterrupted before any trial started; re-run the same command to start "
                  f"({_command()})", file=sys.stderr)
            return 130


def _prepare(args: argparse.Namespace) -> tuple[SweepSpec, Plan, Path]:
    spec = preflight.resolve_paths(load_spec(args.space), args.space)
    if args.name:
        spec = spec.model_copy(update={"name": args.name})
    source = str(args.space)
    models = preflight.resolve_models(spec, args.space, strict=not args.dry_run)
    if args.dry_run:
        for model in models.values():
            if model.unreachable:
                print(f"note: model {model.written!r} ({model.source}) cannot be fetched here now "
                      f"({model.unreachable}); the sweep itself would refuse it")
    splits = preflight.check_data(spec)
    storage = args.storage.resolve()
    try:
        plan = build_plan(spec, data_fingerprint=splits.fingerprint, storage=storage, models=models)
    except ConfigError as error:  # a combination the space allows but a trial cannot take
        raise ConfigError(f"{source}: {error}") from None
    return spec, plan, storage


def print_plan(spec: SweepSpec, plan: Plan, storage: Path) -> None:
    res = spec.resources
    print(f"sweep {spec.name!r}: {len(plan.trials)} trials in {len(plan.stages)} stage(s); "
          f"{spec.models.size} models; data {spec.data.train_size}/{spec.data.quiz_size}/"
          f"{spec.data.test_size} ({spec.data.test_split}); seeds {spec.seeds}")
    print(f"resources per trial: {res.workers_per_trial} worker(s) × {res.cpus_per_worker:g} CPU"
          f"{f' + {res.gpus_per_worker:g} GPU' if res.gpus_per_worker else ''}; retries {res.max_failures}")
    stage_seconds = []
    for stage, trials in sorted(plan.stages.items()):
        label = "fine-tune teachers and baselines" if stage == 1 else "distil from stage-1 checkpoints"
        todo = [t for t in trials if not is_done(storage, t.key)]
        print(f"\nstage {stage} ({label}): {len(trials)} trials, {len(trials) - len(todo)} already done")
        seconds = {t.key: trial_seconds(t.config) for t in todo}
        for trial in trials:
            uses = f"  ← {', '.join(k[:8] for k in trial.teacher_keys)}" if trial.teacher_keys else ""
            estimate = seconds.get(trial.key)
            status = ("reuse" if trial.key not in seconds else
                      f"~{estimate / 60:.1f} min" if estimate is not None else "train")
            print(f"  {trial.key[:8]}  {trial.name:<58} {trial.config.epochs} ep  {status}{uses}")
        stage_seconds.append(list(seconds.values()))
    for line in plan.skipped:
        print(f"skipped by rule: {line}")
    if all(s is not None for stage in stage_seconds for s in stage):
        cores = os.cpu_count() or 1
        slots = max(1, int(cores // (res.workers_per_trial * res.cpus_per_worker)))
        total = SWEEP_OVERHEAD_S + sum(makespan(seconds, slots) for seconds in stage_seconds)
        print(f"\nestimate for this machine ({cores} cores, {slots} trial(s) at a time): "
              f"~{total / 60:.0f} min (from a cost model fitted on a 2-core machine; models from "
              "the hub are not estimated)")


def _run(args: argparse.Namespace, spec: SweepSpec, plan: Plan, storage: Path,
         caught: Callable[[], None]) -> int:
    # Read by Ray at import, so set first. Tune's classic reporter shows the columns we choose (the
    # new output engine ignores reporters); token auth is Ray's default, said explicitly so that
    # Ray does not warn about it.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    # Ctrl-C must reach us (Tune's own handler would stop the stage and return as if it ended).
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # Ray Train's controller sees a worker group start and finish only when it polls it (every 2 s
    # by default): each trial waited a second on average at both ends for nothing. A local cluster
    # inherits this from the driver; an attached one keeps its own setting.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    # Ray Train starts a preemption watcher per trial, a Python process of its own (1.5 s of CPU
    # on this 2-core machine) that asks Ray every 5 s whether a node is being drained, as spot
    # nodes of an autoscaled cluster are. The local Ray the sweep starts is never drained; an
    # attached cluster keeps its own setting, as above.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
    import ray
    from mlflow.tracking import MlflowClient

    from orchestrator import runs

    started = time.time()
    try:
        context = start_ray(args.address)
    except (RuntimeError, ConnectionError) as error:
        print(f"error: Ray did not start: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    cluster = ray.cluster_resources()
    try:
        preflight.check_resources(spec, cluster)
        check_shared(storage)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        ray.shutdown()
        return 2
    print_ray(context, args.address)
    client = MlflowClient(args.tracking_uri)
    experiment_id = runs.ensure_experiment(client, spec.name, artifact_root(args.tracking_uri))
    parent_id = runs.ensure_parent_run(client, experiment_id, spec.name, {
        "space": args.space.stem, "command": _command(),
        "machine": f"{platform.node()} · {os.cpu_count()} CPUs · {platform.platform(terse=True)}",
        "size": spec.models.size})
    existing = runs.trial_runs(client, experiment_id)
    orphans = runs.fail_orphans(client, experiment_id, {t.key for t in plan.trials})
    print(f"MLflow: {redact(args.tracking_uri)} · experiment {spec.name!r} ({experiment_id})"
          f"{f' · {orphans} orphaned run(s) marked FAILED' if orphans else ''}")
    outcomes: list[Outcome] = []
    try:
        for stage, trials in sorted(plan.stages.items()):
            todo = [t for t in trials if not is_done(storage, t.key)]
            for trial in trials:
                if trial not in todo:
                    runs.adopt_finished(client, experiment_id, parent_id, spec.name, trial, storage, existing)
                    outcomes.append(Outcome(trial, "reused"))
            failed_names = {o.trial.key: o.trial.name for o in outcomes if o.status == "failed"}
            blocked = [t for t in todo if failed_names.keys() & set(t.teacher_keys)]
            outcomes += [Outcome(t, "failed", "its teacher " + ", ".join(
                failed_names[k] for k in t.teacher_keys if k in failed_names) + " failed in stage 1")
                for t in blocked]
            todo = [t for t in todo if t not in blocked]
            if blocked and not todo:
                print(f"stage {stage}: nothing to train ({len(blocked)} of {len(trials)} trials wait on "
                      "a teacher that failed)")
                continue
            if not todo:
                print(f"stage {stage}: all {len(trials)} trials already done")
                continue
            print(f"stage {stage}: training {len(todo)} of {len(trials)} trials")
            payloads = {t.name: _payload(t, spec, args, storage, runs.ensure_trial_run(
                client, experiment_id, parent_id, spec.name, t, existing)) for t in todo}
            errors = _tune_stage(spec, stage, payloads, storage, concurrency(spec, cluster, args.max_concurrent))
            for trial in todo:
                if is_done(storage, trial.key):
                    outcomes.append(Outcome(trial, "trained"))
                else:
                    outcomes.append(Outcome(trial, "failed", errors.get(trial.name, "no result")))
    except KeyboardInterrupt:
        caught()
        print("\ninterrupted: finished trials are kept; re-run the same command to resume "
              f"({_command()})", file=sys.stderr)
        ray.shutdown()
        runs.close_unfinished(client, experiment_id, "KILLED")
        client.set_terminated(parent_id, "KILLED")
        return 130
    failed = [o for o in outcomes if o.status == "failed"]
    runs.close_unfinished(client, experiment_id, "FAILED")
    client.set_terminated(parent_id, "FAILED" if failed else "FINISHED")
    ray.shutdown()
    print_summary(outcomes, storage, time.time() - started)
    if not args.no_report:
        _report(client, spec.name, args.report_dir or RESULTS_DIR / spec.name)
    if failed:
        print(f"\n{len(failed)} trial(s) failed:", file=sys.stderr)
        for outcome in failed:
            print(f"  {outcome.trial.name}: {outcome.error}", file=sys.stderr)
        return 1
    return 0


def _command() -> str:
    """This invocation, for the record and for "re-run to resume", without secrets in URIs."""
    return shlex.join(["python", "-m", "orchestrator.sweep", *(redact(a) for a in sys.argv[1:])])


def concurrency(spec: SweepSpec, cluster: dict[str, float], cap: int | None) -> int:
    """Trials that fit side by side: Tune would start every wrapper at once and leave their
    trainers queueing for CPUs, which costs each one a Python start-up for nothing."""
    res = spec.resources
    slots = int(cluster.get("CPU", 0) // (res.workers_per_trial * res.cpus_per_worker))
    if res.gpus_per_worker:
        slots = min(slots, int(cluster.get("GPU", 0) // (res.workers_per_trial * res.gpus_per_worker)))
    for limit in (cap, res.max_concurrent):
        if limit:
            slots = min(slots, limit)
    return max(1, slots)


def _payload(trial: PlannedTrial, spec: SweepSpec, args: argparse.Namespace, storage: Path,
             run_id: str) -> dict:
    return {"config": trial.config.to_dict(), "key": trial.key, "name": trial.name,
            "storage": str(storage), "ray_storage": str(storage / "ray"), "run_id": run_id,
            "tracking_uri": args.tracking_uri, "resources": spec.resources.model_dump(),
            "threads": max(1, int(spec.resources.cpus_per_worker))}


def _tune_stage(spec: SweepSpec, stage: int, payloads: dict[str, dict], storage: Path,
                slots: int) -> dict[str, str]:
    """One Tune run over the stage's trials; returns errors by trial name."""
    from ray import tune

    from orchestrator.trainable import run_trial

    # A failed trial is listed at the end with its error in one line and its error.txt; Tune's own
    # log of it is a page of Ray's internal traceback.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    trainable = tune.with_resources(tune.with_parameters(run_trial, payloads=payloads), TRIAL_RESOURCES)
    reporter = tune.CLIReporter(metric_columns={"epoch": "epoch", "train_loss": "loss",
                                                "val_accuracy": "val acc"},
                                parameter_columns=[], max_report_frequency=30,
                                print_intermediate_tables=True, max_column_length=60)
    tuner = tune.Tuner(
        trainable,
        param_space={"name": tune.grid_search(sorted(payloads))},
        tune_config=tune.TuneConfig(max_concurrent_trials=slots, reuse_actors=True,
                                    trial_name_creator=lambda t: t.config["name"],
                                    trial_dirname_creator=lambda t: t.config["name"]),
        run_config=tune.RunConfig(name=f"{spec.name}-stage{stage}", storage_path=str(storage / "tune"),
                                  progress_reporter=reporter, verbose=1),
    )
    results = tuner.fit()
    return {r.config["name"]: f"{error_line(r.error)} (logs: {Path(r.path) / 'error.txt'})"
            for r in results if r.error}


def error_line(error: BaseException) -> str:
    """What went wrong, in one line: the last line of the error that is not part of a traceback
    (Ray wraps a worker's error in its own, with colour codes and frames)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(("File ", "^", "Traceback", "~"))]
    return (said or lines or [type(error).__name__])[-1][:240]


def print_summary(outcomes: list[Outcome], storage: Path, elapsed: float) -> None:
    import json

    print(f"\n{'trial':<60} {'status':<8} {'val acc':>8} {'test acc':>8}")
    for outcome in outcomes:
        val = test = "-"
        result_path = model_dir(storage, outcome.trial.key) / RESULT_FILE
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            val = f"{result['history'][-1]['val_accuracy']:.4f}"
            test = f"{result['final']['test_accuracy']:.4f}"
        print(f"{outcome.trial.name:<60} {outcome.status:<8} {val:>8} {test:>8}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("trained", "reused", "failed")}
    print(f"{len(outcomes)} trials: {counts['trained']} trained, {counts['reused']} reused, "
          f"{counts['failed']} failed · {elapsed / 60:.1f} min · finished trials in {storage / 'models'}")


def _report(client, sweep: str, out_dir: Path) -> None:
    from orchestrator.report import ReportError, build_report, summary_text

    try:
        print(summary_text(build_report(client, sweep, out_dir)))
    except ReportError as error:
        print(f"report not written: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
