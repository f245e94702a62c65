"""Where things land by default: all under the project's ``results/`` folder, all overridable."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "results"
DEFAULT_STORAGE = RESULTS_DIR / "store"          # Ray storage, stage-1 checkpoints, caches
DEFAULT_TRACKING_URI = f"sqlite:///{RESULTS_DIR / 'mlflow.db'}"
DEFAULT_ARTIFACT_ROOT = RESULTS_DIR / "mlartifacts"
DEFAULT_SPACE = PROJECT_ROOT / "search_spaces" / "smoke.yaml"
