"""Every stored artifact a command reads is checked before it is used: a run's model (predict, the
demo), its test predictions (the report), a finished trial's folder (a re-run sweep, through
``trainers/record/layout.py``).

What is missing or unreadable becomes one line naming the run (name and id), the path and the fix
(:class:`ArtifactError`, a ``UserError``: ``error: …``, exit 2), never a traceback from
transformers or MLflow deep inside a load. The fix is the same for every command: re-run the sweep
that made the run (its parent run's ``command`` tag: ``python -m orchestrator.sweep --space …``),
which logs a finished trial's files into its run again from the storage (``runs.adopt_finished``)
or, where the storage lost them too, trains the trial again; or read the store that has them.

The file checks themselves (``trainers/record/artifact_files.py``) are shared with the workers' side.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlflow.tracking import MlflowClient

from orchestrator.tracking.store import parent_run
from trainers.errors import UserError
from trainers.record.artifact_files import model_problem

COMMAND_TAG = "command"  # the parent run's: the sweep's invocation (orchestrator/sweep.py)


class ArtifactError(UserError):
    """A stored artifact a command needs is missing or unreadable: one line, run, path, fix."""


def rebuild_hint(client: MlflowClient, sweep: str) -> str:
    """How to get a sweep's artifacts back: its own command again, or another store."""
    command = None
    experiment = client.get_experiment_by_name(sweep)
    if experiment is not None:
        parent = parent_run(client, experiment.experiment_id)
        command = parent.data.tags.get(COMMAND_TAG) if parent else None
    command = command or f"python -m orchestrator.sweep --name {sweep}"
    return f"re-run the sweep to rebuild it ({command}) or point --tracking-uri at the store that has it"


def local_path(uri: str) -> Path | None:
    """A ``file:`` URI or a plain path as a local path; ``None`` for a remote store's URI."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return Path(uri) if not parts.scheme else None


def first_line(error: BaseException, limit: int = 160) -> str:
    """What an error says, in one short line (its type where it says nothing)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]


def artifact_error(run_name: str, run_id: str, what: str, where: str | Path, problem: str,
                   fix: str) -> ArtifactError:
    """``run NAME (ID): WHAT WHERE PROBLEM; FIX`` in one line."""
    said = " ".join(str(problem).split())
    return ArtifactError(f"run {run_name} ({run_id}): {what} {where} {said}; {fix}")


def check_model(folder: Path, run_name: str, run_id: str, fix: str, what: str = "model") -> Path:
    """``folder`` if it holds a loadable model's files (config, weights, tokenizer; an MLflow
    model's ``MLmodel`` and what it names), else :class:`ArtifactError`."""
    problem = model_problem(folder)
    if problem:
        raise artifact_error(run_name, run_id, what, folder, problem, fix)
    return folder
