"""Where a sweep's storage keeps what: one definition for the driver, the trials and the workers.

``--storage`` is one folder (on a multi-node cluster, one that every node mounts at the same
path), laid out as::

    models/<key>/   a finished trial: model/ (safetensors, config, tokenizer), config.json,
                    predictions, result.json (written last: its presence marks the trial done;
                    a sweep trains again one whose files are not all there and readable, and
                    says why: ``unfinished``)
    cache/          token and teacher-logit caches, shared by concurrent trials (atomic writes)
    ray/<key>/      Ray Train's run of the trial, named by its content key: epoch checkpoints a
                    restarted trial resumes from, and trial_time.json (read by benchmarks)
    tune/           one Ray Tune experiment per sweep stage
    stopped/<key>.json  a trial the search's scheduler stopped early: the epoch and the metrics it
                    was judged on (its presence keeps a re-run from training it again)
    optuna/<sweep>.json  an Optuna search's suggestions, by study (``orchestrator/plan/studies.py``):
                    what a re-run resumes instead of asking for new ones
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainers.record.artifact_files import trial_problem
from trainers.record.artifacts import MODEL_ARTIFACT_DIR, RESULT_FILE

TRIAL_TIME_FILE = "trial_time.json"
STOPPED_DIR = "stopped"
SUGGESTIONS_DIR = "optuna"


@dataclass(frozen=True)
class StorageLayout:
    root: Path

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    @property
    def tune(self) -> Path:
        return self.root / "tune"

    def model_dir(self, key: str) -> Path:
        """A finished trial's folder."""
        return self.models / key

    def weights_dir(self, key: str) -> Path:
        """The finished trial's model, as a distilling trial loads its teacher."""
        return self.model_dir(key) / MODEL_ARTIFACT_DIR

    def result_file(self, key: str) -> Path:
        return self.model_dir(key) / RESULT_FILE

    def is_done(self, key: str) -> bool:
        return self.result_file(key).is_file()

    def unfinished(self, key: str) -> str | None:
        """Why a folder marked done (``result.json``) is no finished trial, in words (a file that
        a later trial, the MLflow run or the report reads from it is missing or unreadable:
        ``trainers/record/artifact_files.py``); ``None`` when it is one, or is not marked done."""
        if not self.is_done(key):
            return None
        problem = trial_problem(self.model_dir(key))
        return f"{self.model_dir(key)} {problem}" if problem else None

    def unmark(self, key: str) -> None:
        """No longer done, so trained again (its worker replaces the folder): ``result.json`` is
        kept beside, renamed ``result.json.unfinished``, until then."""
        self.result_file(key).replace(self.result_file(key).with_name(f"{RESULT_FILE}.unfinished"))

    def trial_time_file(self, key: str) -> Path:
        """The trial as Tune saw it, Ray Train's start-up and tear-down included."""
        return self.ray / key / TRIAL_TIME_FILE

    def stopped_file(self, key: str) -> Path:
        """The marker of a trial stopped early (``orchestrator/run/stopped.py``); not under
        ``models/``, where a folder means a finished trial with a model to load."""
        return self.root / STOPPED_DIR / f"{key}.json"

    def suggestions_file(self, sweep: str) -> Path:
        return self.root / SUGGESTIONS_DIR / f"{sweep}.json"

    def is_stopped(self, key: str) -> bool:
        return self.stopped_file(key).is_file()
