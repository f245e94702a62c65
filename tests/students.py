"""A trial's folder with a real (tiny, random) student saved in it, as the worker saves one: the
model and its tokenizer under ``model/``, for what reads or logs a finished trial's model."""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cache
from pathlib import Path

from tests.conftest import VOCAB
from trainers.data.tasks import TASKS
from trainers.models.build import build_model
from trainers.record.artifacts import CONFIG_ARTIFACT, MODEL_ARTIFACT_DIR
from trainers.record.model_log import set_labels


def save_student(folder: Path, *, labelled: bool = False) -> None:
    """The tiny BERT preset, saved as a worker saves a student; ``labelled``: with the class names
    the worker now writes into its config (older folders have none). Beside it, the trial's
    config.json (its task: SST-2) unless the folder has one."""
    shutil.copytree(_saved(labelled), folder / MODEL_ARTIFACT_DIR, dirs_exist_ok=True)
    if not (folder / CONFIG_ARTIFACT).exists():
        (folder / CONFIG_ARTIFACT).write_text(json.dumps({"data": {"task": "sst2"}}))


@cache
def _saved(labelled: bool) -> Path:
    """Built and saved once per test session, copied into each folder."""
    folder = Path(tempfile.mkdtemp(prefix="student-"))
    built = build_model("bert", "tiny", train_texts=(), cache_dir=folder, vocab_file=VOCAB)
    if labelled:
        set_labels(built.model.config, TASKS["sst2"].labels)
    built.model.save_pretrained(folder / MODEL_ARTIFACT_DIR)
    built.tokenizer.save_pretrained(folder / MODEL_ARTIFACT_DIR)
    return folder / MODEL_ARTIFACT_DIR
