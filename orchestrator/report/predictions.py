"""Per-example test predictions of runs (``predictions/test_predictions.csv``, columns ``index,
label, prediction``), downloaded once each: the basis of a one-seed row's Wilson interval and of
every paired test. The one part of reading MLflow that needs pandas, so apart from the reader.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from orchestrator import tracking


class Predictions:
    """Per-example test predictions (``index, label, prediction``) of runs, downloaded once each."""

    def __init__(self, client: MlflowClient, scratch: Path) -> None:
        self._client = client
        self._scratch = scratch
        self._cache: dict[str, pd.DataFrame | None] = {}

    def get(self, run_id: str) -> pd.DataFrame | None:
        """The run's predictions, or ``None`` when the artifact is missing or malformed."""
        if run_id not in self._cache:
            self._cache[run_id] = self._load(run_id)
        return self._cache[run_id]

    def _load(self, run_id: str) -> pd.DataFrame | None:
        destination = self._scratch / run_id
        destination.mkdir(parents=True, exist_ok=True)
        try:
            path = self._client.download_artifacts(run_id, tracking.PREDICTIONS_ARTIFACT,
                                                   str(destination))
            frame = pd.read_csv(path)
        except (MlflowException, OSError, ValueError):  # ValueError: pandas' empty/parse errors
            return None
        if not {"index", "label", "prediction"} <= set(frame.columns):
            return None
        return frame[["index", "label", "prediction"]]
