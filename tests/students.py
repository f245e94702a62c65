"""A trial's folder with a real (tiny, random) student saved in it, as the worker saves one: the
model and its tokenizer under ``model/``, for what reads or logs a finished trial's model."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from tests.conftest import VOCAB
from trainers.artifacts import MODEL_ARTIFACT_DIR
from trainers.model_log import set_labels
from trainers.models import build_model


def save_student(folder: Path, *, labelled: bool = False) -> None:
    """The tiny BERT preset, saved as a worker saves a student; ``labelled``: with the class names
    the worker now writes into its config (older folders have none)."""
    shutil.copytree(_saved(labelled), folder / MODEL_ARTIFACT_DIR, dirs_exist_ok=True)


@cache
def _saved(labelled: bool) -> Path:
    """Built and saved once per test session, copied into each folder."""
    folder = Path(tempfile.mkdtemp(prefix="student-"))
    built = build_model("bert", "tiny", train_texts=(), cache_dir=folder, vocab_file=VOCAB)
    if labelled:
        set_labels(built.model.config)
    built.model.save_pretrained(folder / MODEL_ARTIFACT_DIR)
    built.tokenizer.save_pretrained(folder / MODEL_ARTIFACT_DIR)
    return folder / MODEL_ARTIFACT_DIR
