"""Is the sweep's storage shared by every node of the Ray cluster?

Trials write their checkpoints, caches and finished folders under ``--storage`` from whichever node
runs them, and the driver reads them back (a resumed trial may even continue on another node), so
on a multi-node cluster the storage must be one folder that every node mounts at the same path.
A node-local path would not fail at once: trials would train, then the driver would find nothing
and report them failed. So the driver writes a probe file, a zero-CPU task pinned to each node
looks for it and answers with a file of its own, and any node that cannot see the probe, or whose
answer the driver cannot see, stops the sweep before it starts.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from trainers.errors import UserError

ANSWER_TIMEOUT_S = 120.0  # a node starts a Python worker for its task: seconds, more when loaded
FIX = ("on a multi-node cluster --storage must be a folder that every node mounts at the same path "
       "(NFS, a shared volume)")


def check_shared(storage: Path, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
    """Raise :class:`UserError` naming the first node that does not share ``storage`` with the
    driver. One node alone shares everything with itself: nothing to check. Needs Ray started."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
    if len(nodes) < 2:
        return
    token = uuid.uuid4().hex
    probe = storage / f".shared-probe-{token}"
    probe.write_text(token)
    look = ray.remote(num_cpus=0, max_retries=0)(answer_probe)
    try:
        pending = {look.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                   .remote(str(probe), token, node): node for node in nodes}
        ready, late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
        for ref in late:  # the driver gives up on them: they must not stay queued on their node
            ray.cancel(ref, force=True)
        answered = {pending[ref]: _result(ref) for ref in ready}
        answers = {node: _verdict(answered.get(node), answer_path(probe, node), timeout_s) for node in nodes}
    finally:
        for path in (probe, *(answer_path(probe, node) for node in nodes)):
            path.unlink(missing_ok=True)
    problem = first_problem(storage, nodes, answers)
    if problem:
        raise UserError(problem)


def _result(ref) -> str:
    """The task's answer; a node that died or a worker that crashed meanwhile is an answer too."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        return f"could not run the check ({type(error).__name__})"


def _verdict(answer: str | None, answer_file: Path, timeout_s: float) -> str:
    """The node's own answer, checked from the driver's side: "" only if its file is here too."""
    if answer is None:
        return f"did not answer within {timeout_s:g} s"
    if not answer and not answer_file.is_file():
        return "wrote its answer where the driver cannot see it"
    return answer


def answer_probe(probe: str, token: str, node: str) -> str:
    """Runs on one node: "" when it sees the driver's probe and wrote its answer beside it, else
    what went wrong."""
    path = Path(probe)
    try:
        if path.read_text() != token:
            return f"sees another file at {path}"
        answer_path(path, node).write_text(token)
    except FileNotFoundError:
        return f"cannot see the driver's probe file {path}"
    except OSError as error:
        return f"cannot use it ({error.strerror or error})"
    return ""


def answer_path(probe: Path, node: str) -> Path:
    return probe.with_name(f"{probe.name}.{node}")


def first_problem(storage: Path, nodes: dict[str, str], answers: dict[str, str]) -> str | None:
    """The one-line error for the first node whose answer is not "" (``nodes``: id → IP)."""
    for node, answer in answers.items():
        if answer:
            return (f"storage {storage} is not shared: Ray node {node[:12]} ({nodes[node]}) {answer}; "
                    f"{FIX}")
    return None
