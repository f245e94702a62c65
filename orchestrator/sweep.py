"""``python -m orchestrator.sweep``: search space → plan → one Ray Tune run per stage → report.

Flow: validate everything (space, models, data, storage, tracking store, Ray address) before
starting anything; plan the trials; start or attach to Ray; make the MLflow experiment, the sweep's
parent run and one child run per trial; run each stage's unfinished trials as a Tune run of Ray
Train trainers; print a summary; regenerate the report. Re-running the same command resumes:
finished trials are skipped (their folder under the storage holds ``result.json``) and an
interrupted trial continues from its last epoch checkpoint. One sweep trains on a storage at a
time: a second one is refused before Ray starts (``orchestrator/run/store_lock.py``).

Exit codes: 0 every trial finished (or was stopped early by the search's scheduler), 1 some trials
failed (listed) or Ray did not start, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator.check import preflight
from orchestrator.check.storage import check_shared
from orchestrator.paths import (
    DEFAULT_REPORTS,
    DEFAULT_SPACE,
    DEFAULT_STORAGE,
    artifact_root,
    report_dir,
    shown,
)
from orchestrator.plan.estimate import (
    critical_path,
    makespan,
    sweep_seconds,
    trial_seconds,
    unlayered_seconds,
)
from orchestrator.plan.planner import Plan, build_plan
from orchestrator.run import interrupts
from orchestrator.run.local_ray import configure_environment, print_ray, start_ray
from orchestrator.run.stages import Outcome, SweepRuns, concurrency, main_column, run_stages
from orchestrator.run.stopped import Stop, stays_stopped
from orchestrator.run.store_lock import storage_lock
from orchestrator.spec import recipes
from orchestrator.spec.search import short
from orchestrator.spec.space import SweepSpec, load_spec
from orchestrator.tracking.runs import check_resumable
from orchestrator.tracking.store import add_tracking_uri_option, check_store, redact, store_errors
from trainers.config import ConfigError
from trainers.data.source import HUB
from trainers.data.tasks import GLUE_HUB
from trainers.errors import UserError
from trainers.methods import registry as methods
from trainers.record.layout import StorageLayout


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE,
                        help="search-space YAML (default: %(default)s)")
    parser.add_argument("--name",
                        help="sweep name (default: the space's name); one MLflow experiment per name")
    parser.add_argument("--address",
                        help="attach to a running Ray cluster (host:port, ray://host:10001 or auto)")
    add_tracking_uri_option(parser)
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE,
                        help="Ray storage, finished trials and caches; shared on a multi-node cluster "
                             "(default: %(default)s)")
    parser.add_argument("--max-concurrent", type=int,
                        help="cap on trials running at once (default: what the resources allow)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit; starts nothing")
    parser.add_argument("--resume", action="store_true",
                        help="only continue a sweep that exists in the tracking store "
                             "(a mistyped name fails instead of starting anew)")
    parser.add_argument("--report-dir", type=Path,
                        help=f"where the report goes (default: {shown(DEFAULT_REPORTS)}/<sweep>, which git "
                             "ignores; the committed reports: results/<sweep>)")
    parser.add_argument("--no-report", action="store_true", help="skip regenerating the report at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with ExitStack() as held:  # the storage's lock, once taken, until the sweep ends
        return _main(args, held)


def _main(args: argparse.Namespace, held: ExitStack) -> int:
    try:
        spec, plan, layout = _prepare(args)
        if args.dry_run:
            print_plan(spec, plan, layout, args.max_concurrent)
            return 0
        preflight.check_ray_address(args.address)
        preflight.check_storage(layout.root)
        # One sweep trains on a storage at a time (a second one is refused here, having written
        # nothing: not even the tracking store, which the next check may create).
        held.enter_context(storage_lock(layout.root, args.space, _command()))
        check_store(args.tracking_uri, create=True)
        if not args.address:  # the local cluster is this machine: a trial too big fails before Ray starts
            preflight.check_cpus(spec, os.cpu_count() or 1, local=True)
        with store_errors(args.tracking_uri):
            if args.resume:
                check_resumable(args.tracking_uri, spec.name)
            client = MlflowClient(args.tracking_uri)  # opens the store: one MLflow cannot use fails here
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with interrupts.landing() as caught:
        try:
            with store_errors(args.tracking_uri):
                return _run(args, spec, plan, layout, caught, client)
        except KeyboardInterrupt:  # before the stages (Ray starting, the checks): no trial started
            caught()
            print(f"\ninterrupted before any trial started; re-run the same command to start "
                  f"({_command()})", file=sys.stderr)
            return 130
        except UserError as error:  # once Ray runs (the store failed, say): Ray stops as on any exit
            import ray

            print(f"error: {error}", file=sys.stderr)
            ray.shutdown()
            return 2


def _prepare(args: argparse.Namespace) -> tuple[SweepSpec, Plan, StorageLayout]:
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
    layout = StorageLayout(args.storage.resolve())
    try:
        plan = build_plan(spec, data_fingerprint=splits.fingerprint, storage=layout.root, models=models)
    except ConfigError as error:  # a combination the space allows but a trial cannot take
        raise ConfigError(f"{source}: {error}") from None
    preflight.check_pkd(plan, args.space)
    return spec, plan, layout


def print_plan(spec: SweepSpec, plan: Plan, layout: StorageLayout, cap: int | None = None) -> None:
    """The plan, and its time with as many trials at a time as the sweep would run here (``cap``:
    ``--max-concurrent``)."""
    res = spec.resources
    print(f"sweep {spec.name!r}: {len(plan.trials)} trials in {len(plan.stages)} stage(s); "
          f"{spec.models.size} models; data {spec.data.train_size}/{spec.data.quiz_size}/"
          f"{spec.data.test_size} ({spec.data.test_split}) from {_data_shown(spec)}; seeds {spec.seeds}")
    print(f"resources per trial: {res.workers_per_trial} worker(s) × {res.cpus_per_worker:g} CPU"
          f"{f' + {res.gpus_per_worker:g} GPU' if res.gpus_per_worker else ''}; retries {res.max_failures}")
    for name in sorted({t.recipe for t in plan.trials} - {recipes.DEFAULT}):
        where = ("the whole sweep, under the space's own train: values" if name == spec.recipe
                 else "the trials of the grid blocks that name it, over the space's train: values")
        print(f"recipe {recipes.describe(name)} (search_spaces/recipes/{name}.yaml; {where})")
    if plan.samples:
        search = spec.search
        print(f"random search: {search.num_samples} sample(s) (search.seed {search.seed}) × "
              f"{len(spec.seeds)} seed(s); metric {search.metric} ({search.mode})")
        print("  " + "; ".join(f"{where} ~ {dist}" for where, dist in spec.distributions.items()))
        for index, values in plan.samples.items():
            print(f"  s{index}  " + "  ".join(f"{where}={short(value)}" for where, value in values.items()))
        if search.scheduler == "asha":
            print(f"early stopping: ASHA on {search.metric} at epochs {search.grace_period} × "
                  f"{search.reduction_factor:g}^k, each sample against the others of its configuration "
                  "and seed; never a teacher, nor at a trial's last epoch")
    if plan.studies:
        search = spec.search
        print(f"optuna search: {search.num_samples} suggestion(s) for each of {len(plan.studies)} "
              f"configuration(s) (TPE sampler, search.seed {search.seed}); metric {search.metric} "
              f"({search.mode}), told at each trial's last epoch")
        print("  " + "; ".join(f"{where} ~ {dist}" for where, dist in spec.distributions.items()))
    stage_seconds: list[list[float | None]] = []
    known: dict[str, float | None] = {}  # each trial's estimate; a reused trial's is absent
    teacher_keys = {k for t in plan.trials for k in t.teacher_keys}
    for name in dict.fromkeys(t.config.method for t in plan.trials):  # what each method's key reads
        method = methods.get(name)
        reads = ", ".join(method.reads) if method.reads else "no distillation setting"
        print(f"method {name} ({method.label}): reads {reads}"
              + (", trains a cohort in one trial" if method.cohort else ""))
    for stage, trials in sorted(plan.stages.items()):
        label = ("fine-tune teachers and baselines" if stage == 1 else
                 f"distil from stage-{'1' if stage == 2 else f'1…{stage - 1}'} checkpoints")
        if stage == 1 and any(t.cohort for t in trials):
            label += ", train cohorts"
        kept = [t for t in trials if stays_stopped(t, layout, spec.search.scheduler, teacher_keys)]
        todo = [t for t in trials  # a folder marked done that lost files is trained again
                if (not layout.is_done(t.key) or layout.unfinished(t.key)) and t not in kept]
        print(f"\nstage {stage} ({label}): {len(trials)} trials, {len(trials) - len(todo)} already done"
              f"{f' ({len(kept)} stopped early)' if kept else ''}")
        seconds = {t.key: trial_seconds(t.config) for t in todo}
        for trial in trials:
            uses = f"  ← {', '.join(k[:8] for k in trial.teacher_keys)}" if trial.teacher_keys else ""
            estimate = seconds.get(trial.key)
            status = ("stopped" if trial in kept else "reuse" if trial.key not in seconds else
                      f"with {trial.lead[:8]}" if trial.lead else
                      f"~{estimate / 60:.1f} min" if estimate is not None else "train")
            print(f"  {trial.key[:8]}  {trial.name:<58} {trial.config.epochs} ep  {status}{uses}")
        for study in (s for s in plan.studies if s.template.stage == stage):
            # Suggestions still to ask: the template's config (sample 0's draws) stands for them.
            asking = max(0, spec.search.num_samples - len(study.recorded))
            each = trial_seconds(study.template.config)
            seconds.update({f"{study.group}/{k}": each for k in range(asking)})
            name = study.template.name.replace("__s0__", "__s*__")
            print(f"  {'optuna':<8}  {name:<58} {len(study.recorded)} suggested, {asking} to ask"
                  + (f" (~{each / 60:.1f} min each)" if asking and each is not None else ""))
        stage_seconds.append(list(seconds.values()))
        known.update(seconds)
    for line in plan.skipped:
        print(f"skipped by rule: {line}")
    if all(s is not None for stage in stage_seconds for s in stage):
        import torch  # loaded already, by the models' checks

        machine = {"CPU": os.cpu_count() or 1, "GPU": torch.cuda.device_count()}
        slots = concurrency(spec, machine, cap)
        gpus = f", {machine['GPU']} GPU(s)" if machine["GPU"] else ""
        print(f"\nestimate for this machine ({machine['CPU']} cores{gpus}, {slots} trial(s) at a time): "
              f"~{sweep_seconds(stage_seconds, slots) / 60:.0f} min (from a cost model fitted on a "
              "2-core machine; models from the hub are not estimated)")
        path = critical_path(plan.trials, known)
        print(f"graph: depth {len(plan.stages)} stage(s); critical path ~{path / 60:.1f} min of training "
              f"(the longest chain of trials, each after its teachers: no schedule beats it)")
        if len(plan.stages) > 1:  # what waiting for each stage's last trial costs
            layered = sum(makespan(seconds, slots) for seconds in stage_seconds)
            free = unlayered_seconds(plan.trials, known, slots)
            print(f"stages: ~{layered / 60:.1f} min of training in layers, ~{free / 60:.1f} min if each "
                  f"trial started when its teachers had finished (the barriers cost "
                  f"~{(layered - free) / 60:.1f} min)")


def _data_shown(spec: SweepSpec) -> str:
    """Where the data come from (``docs/data.md``): a folder, or GLUE on the hub."""
    if spec.data.source == HUB:
        return f"the hub ({GLUE_HUB} {spec.data.task}, cached)"
    return spec.data.source


def _run(args: argparse.Namespace, spec: SweepSpec, plan: Plan, layout: StorageLayout,
         caught: Callable[[], None], client: MlflowClient) -> int:
    """Start Ray, open the sweep's MLflow runs, run the stages, close the runs, summarise."""
    configure_environment()
    import ray

    started = time.time()
    try:
        context = start_ray(args.address)
    except (RuntimeError, ConnectionError) as error:
        print(f"error: Ray did not start: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    cluster = ray.cluster_resources()
    try:
        preflight.check_resources(spec, cluster)
        check_shared(layout.root)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        ray.shutdown()
        return 2
    print_ray(context, args.address)
    tracked = _open_runs(client, args, spec, plan)
    try:
        outcomes = run_stages(spec, plan, layout, tracked, concurrency(spec, cluster, args.max_concurrent))
    except KeyboardInterrupt:
        caught()
        print("\ninterrupted: finished trials are kept; re-run the same command to resume "
              f"({_command()})", file=sys.stderr)
        ray.shutdown()
        _close_runs(tracked, "KILLED", "KILLED")
        return 130
    failed = [o for o in outcomes if o.status == "failed"]
    _close_runs(tracked, "FAILED", "FAILED" if failed else "FINISHED")
    ray.shutdown()
    print_summary(outcomes, layout, time.time() - started, spec.data.task)
    if not args.no_report:
        _report(tracked.client, spec.name, args.report_dir or report_dir(spec.name), args.tracking_uri)
    _register(tracked.client, spec.name, args.tracking_uri)
    if failed:
        print(f"\n{len(failed)} trial(s) failed:", file=sys.stderr)
        for outcome in failed:
            print(f"  {outcome.trial.name}: {outcome.error}", file=sys.stderr)
        return 1
    return 0


def _open_runs(client, args: argparse.Namespace, spec: SweepSpec, plan: Plan) -> SweepRuns:
    """The sweep's experiment and parent run (found again on a re-run), its child runs so far,
    and no RUNNING child left over from a killed driver that no planned trial continues."""
    from orchestrator.tracking import runs
    from orchestrator.tracking.sweep_record import log_sweep_inputs

    experiment_id = runs.ensure_experiment(client, spec.name, artifact_root(args.tracking_uri))
    parent_id = runs.ensure_parent_run(client, experiment_id, spec.name, {
        "space": args.space.stem, "command": _command(),
        "machine": f"{platform.node()} · {os.cpu_count()} CPUs · {platform.platform(terse=True)}",
        "size": spec.models.size,
        # what ranks the report's search section: the report reads these tags first
        "search_metric": spec.search.metric, "search_mode": spec.search.mode})
    log_sweep_inputs(client, parent_id, args.space, spec, plan)
    existing = runs.trial_runs(client, experiment_id)
    orphans = runs.fail_orphans(client, experiment_id, {t.key for t in plan.trials})
    print(f"MLflow: {redact(args.tracking_uri)} · experiment {spec.name!r} ({experiment_id})"
          f"{f' · {orphans} orphaned run(s) marked FAILED' if orphans else ''}")
    return SweepRuns(client, experiment_id, parent_id, spec.name, args.tracking_uri, existing)


def _close_runs(tracked: SweepRuns, children: str, parent: str) -> None:
    """No child run stays RUNNING (a re-run reopens it); the parent run gets the sweep's end."""
    from orchestrator.tracking import runs

    runs.close_unfinished(tracked.client, tracked.experiment_id, children)
    tracked.client.set_terminated(tracked.parent_id, parent)


def _command() -> str:
    """This invocation, for the record and for "re-run to resume", without secrets in URIs."""
    return shlex.join(["python", "-m", "orchestrator.sweep", *(redact(a) for a in sys.argv[1:])])


def print_summary(outcomes: list[Outcome], layout: StorageLayout, elapsed: float,
                  task: str = "sst2") -> None:
    """One line per trial with the task's main metric on validation (a stopped trial's where it
    stopped) and test (SST-2's accuracy, as ever; MRPC's F1: ``stages.main_column``), then the
    counts; the stopped count only where some were (the line reads as before without a scheduler)."""
    (val_key, val_title), (test_key, test_title) = main_column(task, "val"), main_column(task, "test")
    print(f"\n{'trial':<60} {'status':<8} {val_title:>8} {test_title:>8}")
    for outcome in outcomes:
        found: dict[str, float] = {}
        result_path = layout.result_file(outcome.trial.key)
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            found = {**result["history"][-1], **result["final"]}
        elif outcome.status == "stopped":
            found = Stop.read(layout, outcome.trial.key).metrics
        val, test = (f"{found[k]:.4f}" if k in found else "-" for k in (val_key, test_key))
        print(f"{outcome.trial.name:<60} {outcome.status:<8} {val:>8} {test:>8}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("trained", "reused", "stopped", "failed")}
    stopped = f"{counts['stopped']} stopped early, " if counts["stopped"] else ""
    print(f"{len(outcomes)} trials: {counts['trained']} trained, {counts['reused']} reused, {stopped}"
          f"{counts['failed']} failed · {elapsed / 60:.1f} min · finished trials in {layout.models}")


def _register(client, sweep: str, uri: str) -> None:
    """Each configuration's best run as ``models:/<sweep>.<configuration>@best``; a store
    without a registry only loses that (predict and the demo then read the runs' models)."""
    from mlflow.exceptions import MlflowException

    from orchestrator.serve.registry import ALIAS, register_best

    try:
        registered = register_best(client, sweep)
    except (MlflowException, UserError) as error:
        print(f"note: best models not registered in {redact(uri)} "
              f"({str(error).splitlines()[0][:100]}); predict and the demo read the runs' models",
              file=sys.stderr)
        return
    moved = [r for r in registered if r.moved]
    print(f"\nregistry: {len(registered)} configuration(s), alias '{ALIAS}' set or moved for "
          f"{len(moved)}; load one with mlflow.pyfunc.load_model(\"models:/<name>@{ALIAS}\")")
    for entry in moved:
        print(f"  {entry.uri}  (version {entry.version}, {entry.label})")


def _report(client, sweep: str, out_dir: Path, uri: str) -> None:
    from orchestrator.report.build import build_report
    from orchestrator.report.cli import summary_text
    from orchestrator.tracking.sweep_record import log_report

    try:
        with store_errors(uri):
            print(summary_text(build_report(client, sweep, out_dir)))
            log_report(client, sweep, out_dir)
    except UserError as error:
        print(f"report not written: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
