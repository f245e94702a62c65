"""A finished trial's student as an MLflow model: the transformers flavor, task
``text-classification``, with a signature and an input example, so that the run has an ``MLmodel``,
shows on MLflow's Models page, can be registered, loads with ``mlflow.pyfunc`` and serves with
``mlflow models serve``. The worker logs it from the folder it just wrote, the driver from the folder
of a trial it adopts (``orchestrator/runs.adopt_finished``): every finished run gets one, the same way.

Logging adds 0.3–2 s per trial here (1 thread; the tiny BERT preset and MiniLM@2, 63 MB; the
first call in a process pays MLflow's imports) because nothing is guessed: the requirements are
the installed versions (MLflow would otherwise load the model again in a subprocess to infer
them) and the signature is given. Nothing is fetched: the model and its tokenizer are read from
the folder, and the model card MLflow looks up is asked of the hub under the folder's path, which
huggingface_hub refuses as a repository id before any request.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlflow.tracking import MlflowClient

from trainers.data import tasks
from trainers.record.artifacts import CONFIG_ARTIFACT, MODEL_ARTIFACT_DIR

TASK = "text-classification"
MODEL_NAME = "model"  # the logged model's name: ``runs:/<run id>/model`` as before
INPUT_EXAMPLE = ["NLP is fun."]
# What a served or pyfunc-loaded model needs; their installed versions are its requirements.
REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "safetensors")


def set_labels(config, labels: Sequence[str]) -> None:
    """Name the classes in a model's config (the task's ``labels``), so that ``pipeline()`` and
    anything else reading the saved model says negative/positive, not LABEL_0/LABEL_1."""
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}


def task_labels(folder: Path) -> tuple[str, ...]:
    """The class names of the task a finished trial's folder was trained on (its config.json)."""
    data = json.loads((folder / CONFIG_ARTIFACT).read_text()).get("data", {})
    return tasks.get(data.get("task", "sst2")).labels


def has_model(client: MlflowClient, run_id: str) -> bool:
    """Whether the run already holds a logged model (a worker that died after logging it)."""
    outputs = client.get_run(run_id).outputs
    return bool(outputs and outputs.model_outputs)


def log_model_and_finish(tracking_uri: str, run_id: str, folder: Path) -> float:
    """Log the student saved in ``folder/model`` as the run's MLflow model and end the run
    FINISHED; return the seconds the logging took.

    The flavor logs through MLflow's fluent API, which files the model under the active run's
    experiment: the run is made active for the call, and leaving it ends it FINISHED, which is
    where a finished trial's run goes anyway. Folders saved before the labels were named get them
    here, in the logged copy.
    """
    import mlflow
    import mlflow.transformers

    started = time.perf_counter()
    client = MlflowClient(tracking_uri)
    if has_model(client, run_id):  # a worker that died after logging it
        client.set_terminated(run_id, "FINISHED")
        return 0.0
    mlflow.set_tracking_uri(tracking_uri)  # the fluent API's store: this process logs to one
    components = _components(folder)
    with _quiet_flavor(), mlflow.start_run(run_id=run_id):
        mlflow.transformers.log_model(components, name=MODEL_NAME, task=TASK, signature=signature(),
                                      input_example=INPUT_EXAMPLE, pip_requirements=requirements())
    return time.perf_counter() - started


def rewrite_model(tracking_uri: str, model_id: str, folder: Path) -> None:
    """Write the student saved in ``folder/model`` again into an already logged model's artifacts
    (``model_id``: the same model, so the registered versions that point at it load again), as
    :func:`log_model_and_finish` logged it: for a run whose model files were lost from the store."""
    import tempfile

    import mlflow.transformers

    components = _components(folder)
    with tempfile.TemporaryDirectory(prefix="model-") as scratch, _quiet_flavor():
        saved = Path(scratch) / MODEL_NAME
        mlflow.transformers.save_model(components, str(saved), task=TASK, signature=signature(),
                                       input_example=INPUT_EXAMPLE, pip_requirements=requirements())
        MlflowClient(tracking_uri).log_model_artifacts(model_id, str(saved))


def _components(folder: Path) -> dict:
    """The student and its tokenizer from ``folder/model``, its classes named."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainers.models.pruned_bert import register

    register()  # a pruned student's type (trainers/models/pruned_bert.py)
    saved = folder / MODEL_ARTIFACT_DIR
    model = AutoModelForSequenceClassification.from_pretrained(saved, local_files_only=True,
                                                               use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(saved, local_files_only=True)
    set_labels(model.config, task_labels(folder))
    return {"model": model, "tokenizer": tokenizer}


@contextmanager
def _quiet_flavor() -> Iterator[None]:
    """MLflow's transformers flavor warns "no model card / license on the hub": a local model has none."""
    flavor_log = logging.getLogger("mlflow.transformers")
    level = flavor_log.level
    flavor_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        flavor_log.setLevel(level)


def signature():
    """A sentence in; the label and its probability out (the text-classification pipeline's)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    return ModelSignature(inputs=Schema([ColSpec(DataType.string)]),
                          outputs=Schema([ColSpec(DataType.string, "label"),
                                          ColSpec(DataType.double, "score")]))


def requirements() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in REQUIREMENTS]
