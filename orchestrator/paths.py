"""Where things land by default: all under the project's ``results/`` folder, all overridable."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "results"
DEFAULT_STORAGE = RESULTS_DIR / "store"          # Ray storage, stage-1 checkpoints, caches
DEFAULT_TRACKING_URI = f"sqlite:///{RESULTS_DIR / 'mlflow.db'}"



def artifact_root(tracking_uri: str) -> Path | None:
    """For a SQLite store, artifacts go beside the database (``results/mlartifacts`` by default);
    a tracking server decides for itself (and serves them to the workers)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    return None
DEFAULT_SPACE = PROJECT_ROOT / "search_spaces" / "smoke.yaml"
