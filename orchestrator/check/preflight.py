"""Checks that run before anything starts: every user mistake found here costs seconds, not a stage.

Each check raises :class:`UserError` with one line naming the culprit (file, key, value) and the fix;
the CLIs print it and exit 2. Nothing here starts Ray or writes to MLflow.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.plan.planner import Plan
from orchestrator.spec.space import SweepSpec
from trainers.data.glue import Splits, load_splits
from trainers.errors import UserError
from trainers.methods.pkd import PkdError, Shape, matched_layers
from trainers.models.build import architecture
from trainers.models.refs import ModelError, ModelRef, Resolved, resolve


def resolve_paths(spec: SweepSpec, spec_path: Path) -> SweepSpec:
    """Relative ``data.source`` / ``models.vocab_file`` are relative to the space file, like
    docker-compose paths; absolute paths are what travels to the workers."""
    def absolute(value: str) -> str:
        if not value or value == "hub" or Path(value).is_absolute():
            return value
        return str((spec_path.parent / value).resolve())

    data = dataclasses.replace(spec.data, source=absolute(spec.data.source))
    models = dataclasses.replace(spec.models, vocab_file=absolute(spec.models.vocab_file))
    return spec.model_copy(update={"data": data, "models": models})


def model_names(spec: SweepSpec) -> list[str]:
    """Every model reference of the space, in order of first appearance."""
    names: list[str] = []
    for block in spec.grid:
        for name in block.models:
            if name not in names:
                names.append(name)
    return names


def resolve_models(spec: SweepSpec, spec_path: Path, strict: bool = True) -> dict[str, Resolved]:
    """Resolve every model of the space once, on the driver: a folder relative to the space file
    becomes absolute (Ray's workers run elsewhere), a hub id must be fetchable now (``strict``; a
    dry run plans without it), a folder must hold a config, safetensors weights and a tokenizer.
    One line naming the file and the model."""
    try:
        models = resolve(model_names(spec), spec.models.size, spec_path.resolve().parent, strict)
        for model in models.values():  # a pruning's counts against the model's own (hub: when built)
            if ModelRef.parse(model.written).prune is not None:
                architecture(model.source, spec.models.size)
    except ModelError as error:
        raise ModelError(f"{spec_path}: {error}") from None
    vocab = spec.models.vocab_file
    if vocab and not Path(vocab).is_file():
        raise ModelError(f"{spec_path}: models.vocab_file={vocab!r} not found")
    return models


def check_data(spec: SweepSpec) -> Splits:
    return load_splits(spec.data)


def check_storage(storage: Path) -> None:
    try:
        storage.mkdir(parents=True, exist_ok=True)
        probe = storage / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserError(f"storage path {storage} is not writable ({error.strerror}); pass --storage "
                        "with a writable (on a cluster: shared) folder") from None


def check_ray_address(address: str | None, timeout_s: float = 3.0) -> None:
    """A quick TCP probe, so a wrong ``--address`` fails in seconds instead of Ray's long retries."""
    if address in (None, "auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname or not parsed.port:
        raise UserError(f"--address {address!r}: expected host:port (e.g. 127.0.0.1:6379) or "
                        "ray://host:10001")
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=timeout_s).close()
    except OSError as error:
        raise UserError(f"--address {address}: Ray cluster unreachable ({error.strerror or error}); "
                        "start it with `ray start --head` or fix the address") from None


def check_cpus(spec: SweepSpec, have_cpu: float, local: bool = False) -> None:
    res = spec.resources
    need_cpu = res.workers_per_trial * res.cpus_per_worker
    if need_cpu > have_cpu:
        where, fix = (("this machine", "attach to a larger cluster with --address") if local
                      else ("the cluster", "add nodes"))
        raise UserError(f"resources: a trial needs {need_cpu:g} CPUs (workers_per_trial "
                        f"{res.workers_per_trial} × cpus_per_worker {res.cpus_per_worker:g}) but "
                        f"{where} has {have_cpu:g}; lower them or {fix}")


def check_resources(spec: SweepSpec, cluster: dict[str, float]) -> None:
    """Can the cluster ever run one trial? (Ray would otherwise queue it forever.)"""
    check_cpus(spec, cluster.get("CPU", 0.0))
    res = spec.resources
    need_gpu = res.workers_per_trial * res.gpus_per_worker
    have_gpu = cluster.get("GPU", 0.0)
    if need_gpu > have_gpu:
        raise UserError(f"resources: a trial needs {need_gpu:g} GPUs (workers_per_trial "
                        f"{res.workers_per_trial} × gpus_per_worker {res.gpus_per_worker:g}) but the "
                        f"cluster has {have_gpu:g}; set gpus_per_worker: 0 or add GPU nodes")


def check_pkd(plan: Plan, spec_path: Path) -> None:
    """Every trial with PKD on pairs its student with each teacher (one hidden size, a student of
    two layers or more, a teacher at least as deep): refused here in one line, not in a worker
    minutes later. Hub models unknown offline are left to the worker's own check."""
    for trial in plan.trials:
        cfg = trial.config
        if not cfg.distils or cfg.pkd_weight == 0:
            continue
        student = architecture(cfg.student, cfg.size)
        for label, source in zip(trial.teachers, cfg.teachers):
            teacher = architecture(source, cfg.size)
            if student is None or teacher is None:
                continue
            try:
                matched_layers(Shape.of(student), Shape.of(teacher), cfg.pkd_layers)
            except PkdError as error:
                raise PkdError(f"{spec_path}: trial {trial.name} ({trial.student} from {label}, "
                               f"pkd_weight {cfg.pkd_weight:g}): {error} (per_model: "
                               f"{{{trial.student}: {{pkd_weight: 0}}}})") from None
