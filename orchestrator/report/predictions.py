"""Per-example test predictions of runs (``predictions/test_predictions.csv``, columns ``index,
label, prediction``), downloaded once each: the basis of a one-seed row's Wilson interval and of
every paired test. The one part of reading MLflow that needs pandas, so apart from the reader.

Every finished trial's run holds them (its worker, or the driver adopting its folder, logs them):
one the report needs that is missing or unreadable is an ``ArtifactError`` naming the run, the
file and the fix (exit 2), not a table that quietly lacks its interval or test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from orchestrator.check.artifacts import ArtifactError, artifact_error, first_line, local_path
from orchestrator.tracking import names as tracking


class Predictions:
    """Per-example test predictions (``index, label, prediction``) of runs, downloaded once each;
    ``artifact``: which of a run's prediction files (the int8 variant's: ``trainers.record.artifacts``)."""

    def __init__(self, client: MlflowClient, scratch: Path, fix: str = "",
                 artifact: str = tracking.PREDICTIONS_ARTIFACT, what: str = "test predictions") -> None:
        self._client = client
        self._scratch = scratch
        self._fix = fix or "re-run the sweep to rebuild it or point --tracking-uri at the store that has it"
        self._cache: dict[str, pd.DataFrame | None] = {}
        self._artifact = artifact
        self._what = what

    def get(self, run_id: str) -> pd.DataFrame:
        """The run's predictions; an ``ArtifactError`` when the artifact is missing or malformed."""
        if run_id not in self._cache:
            self._cache[run_id] = self._load(run_id)
        return self._cache[run_id]

    def _load(self, run_id: str) -> pd.DataFrame:
        destination = self._scratch / run_id
        destination.mkdir(parents=True, exist_ok=True)
        try:
            path = self._client.download_artifacts(run_id, self._artifact, str(destination))
            frame = pd.read_csv(path)
        except (MlflowException, OSError) as error:
            raise self._error(run_id, None, error) from None
        except ValueError:  # pandas' empty/parse errors
            raise self._error(run_id, "is not a CSV file") from None
        if not {"index", "label", "prediction"} <= set(frame.columns):
            raise self._error(run_id, "lacks the columns index, label, prediction")
        return frame[["index", "label", "prediction"]]

    def _error(self, run_id: str, problem: str | None, error: Exception | None = None) -> ArtifactError:
        """One line: the run, where its predictions are, what is wrong (``problem``, else what
        fetching them raised), the fix."""
        try:
            info = self._client.get_run(run_id).info
            name = info.run_name or ""
            where = f"{info.artifact_uri.rstrip('/')}/{self._artifact}"
        except MlflowException:
            name, where = "", self._artifact
        local = local_path(where)
        if problem is None:
            problem = ("is missing" if local is not None and not local.exists() else
                       f"cannot be read ({first_line(error)})")
        return artifact_error(name, run_id, self._what, local or where, problem, self._fix)
