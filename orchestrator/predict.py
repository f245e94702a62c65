"""``python -m orchestrator.predict "NLP is fun."``: every model of a sweep answers one sentence.

The sweep's teachers and, for each distillation configuration, its best run (highest validation
accuracy at the last epoch, over seeds) are loaded from MLflow — the configuration's registered
``models:/<sweep>.<configuration>@best`` (``orchestrator/registry.py``); where the store has no
registry or the configuration is not registered yet (saying so), the run's trial folder while it
is still there (``model_dir`` tag), else the run's logged MLflow model (the transformers flavor,
``trainers/model_log.py``), else, for a run logged before models were, its ``model/`` artifact
folder — and each prints
Model | Prediction | Confidence | Parameters | Latency (median of 5 forward passes, batch of one,
after one untimed pass).

Loading and classifying are separate (:class:`LoadedModel`), so that ``orchestrator.demo`` loads
every model once and then answers any number of sentences with them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow.transformers
import torch
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.tracking import MlflowClient
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from orchestrator.mlflow_store import add_tracking_uri_option, check_store, no_progress_bars, redact
from orchestrator.registry import best_version_uri
from orchestrator.report.labels import SweepNames, full_label
from orchestrator.report.reader import FINETUNE, GroupKey, ReportError, TrialRun, load_sweep, resolve_sweep
from trainers.artifacts import MODEL_ARTIFACT_DIR
from trainers.errors import UserError
from trainers.models import ModelError, build_model, count_parameters

TIMED_PASSES = 5


@dataclass(frozen=True)
class Answer:
    model: str
    prediction: str
    confidence: float
    parameters: int
    latency_ms: float
    truncated: bool  # the sentence had more tokens than the model takes: the rest was cut off
    token_limit: int


def best_runs(client: MlflowClient, sweep: str) -> list[tuple[str, TrialRun]]:
    """(label, run): the teachers first, then one run per configuration, the best over seeds."""
    data = load_sweep(client, sweep)
    names = SweepNames.of(run.key for run in data.runs)
    best: dict[GroupKey, TrialRun] = {}
    score: dict[GroupKey, float] = {}
    for run in data.runs:
        history = client.get_metric_history(run.run_id, "val_accuracy")
        value = max(history, key=lambda m: m.step).value if history else float("-inf")
        if run.key not in best or value > score[run.key]:
            best[run.key], score[run.key] = run, value
    labelled = [(full_label(key, names), run) for key, run in best.items()]
    return sorted(labelled, key=lambda item: (
        not (item[1].key.method == FINETUNE and item[1].key.student in names.teachers), item[0]))


def model_folder(client: MlflowClient, run: TrialRun, cache: Path, registered: str | None = None) -> Path:
    """The model to load for a run: its configuration's registered ``best`` version (``registered``:
    where its files are), else the run's trial folder if it still exists, else the run's MLflow
    model, else its older ``model/`` artifact. An MLflow model is a folder holding ``MLmodel``."""
    target = cache / run.run_id
    if registered:
        return fetch(client, registered, target)
    found = client.get_run(run.run_id)
    folder = found.data.tags.get("model_dir")
    if folder and (Path(folder) / MODEL_ARTIFACT_DIR).is_dir():
        return Path(folder) / MODEL_ARTIFACT_DIR
    if found.outputs and found.outputs.model_outputs:
        return fetch(client, client.get_logged_model(found.outputs.model_outputs[-1].model_id)
                     .artifact_location, target)
    if not (target / MODEL_ARTIFACT_DIR).is_dir():
        target.mkdir(parents=True, exist_ok=True)
        try:
            client.download_artifacts(run.run_id, MODEL_ARTIFACT_DIR, str(target))
        except Exception as error:  # MLflow raises several types for a missing artifact
            raise ReportError(f"run {run.run_id} ({run.run_name}) has no '{MODEL_ARTIFACT_DIR}/' "
                              f"artifact nor MLflow model ({type(error).__name__}); run its sweep again "
                              "with the storage that holds its trial's folder: that logs the model") from None
    return target / MODEL_ARTIFACT_DIR


def fetch(client: MlflowClient, location: str, target: Path) -> Path:
    """A model's files by their location, read in the client's store (a ``models:/`` URI would be
    resolved in MLflow's default store); a local one is read where it is, not copied."""
    local = location.startswith("file:")
    if not local:
        target.mkdir(parents=True, exist_ok=True)
    return Path(download_artifacts(artifact_uri=location, dst_path=None if local else str(target),
                                   tracking_uri=client.tracking_uri))


def model_sources(client: MlflowClient, sweep: str, cache: Path) -> list[tuple[str, Path]]:
    """(label, model folder) of every model to ask, teachers first: each configuration's
    ``models:/<name>@best`` where the registry has it (``orchestrator/registry.py``), else its best
    run's model, with a note on stderr saying which; downloads land in ``cache``."""
    chosen = best_runs(client, sweep)
    notes = []
    try:
        registered = {run.run_id: best_version_uri(client, sweep, run.run_name) for _, run in chosen}
    except MlflowException as error:
        notes.append(f"note: no model registry in {redact(client.tracking_uri)} "
                     f"({str(error).splitlines()[0][:100]}); the models come from the runs")
        registered = {}
    missing = [label for label, run in chosen if not registered.get(run.run_id)]
    if registered and missing:
        notes.append(f"note: not registered yet, from the runs: {', '.join(missing)} (the next sweep "
                     "registers each configuration's best run)")
    sources = [(label, model_folder(client, run, cache, registered.get(run.run_id))) for label, run in chosen]
    for note in notes:  # once every model is found: a model that is not is the one line said
        print(note, file=sys.stderr)
    return sources


def token_limit(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The most tokens the model takes. RoBERTa numbers positions from ``pad_token_id + 1``, so
    that many of its position embeddings never hold a token (514 positions, 512 tokens)."""
    offset = model.config.pad_token_id + 1 if model.config.model_type == "roberta" else 0
    return min(tokenizer.model_max_length, model.config.max_position_embeddings - offset)


class LoadedModel:
    """One saved model in memory, ready to classify any number of sentences."""

    def __init__(self, label: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.label = label
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.limit = token_limit(model, tokenizer)
        self.parameters = count_parameters(model)

    @classmethod
    def load(cls, label: str, folder: Path) -> LoadedModel:
        """From a saved model's folder, or a downloaded MLflow model (it holds ``MLmodel``)."""
        if (folder / MLMODEL_FILE_NAME).is_file():
            components = mlflow.transformers.load_model(str(folder), return_type="components")
            return cls(label, components["model"], components["tokenizer"])
        try:
            built = build_model(str(folder), "tiny", train_texts=(), cache_dir=folder)
        except ModelError as error:
            raise ModelError(f"{label}: {error}") from None
        return cls(label, built.model, built.tokenizer)

    def classify(self, text: str) -> Answer:
        """The label, its probability and the median latency; text past the limit is cut off."""
        full_length = len(self.tokenizer(text)["input_ids"])
        inputs = self.tokenizer(text, truncation=True, max_length=self.limit, return_tensors="pt")
        times = []
        with torch.inference_mode():
            self.model(**inputs)  # untimed: the first pass pays one-off initialisation
            for _ in range(TIMED_PASSES):
                started = time.perf_counter()
                logits = self.model(**inputs).logits[0]
                times.append(1000 * (time.perf_counter() - started))
        probs = torch.softmax(logits, dim=-1)
        index = int(probs.argmax())
        return Answer(self.label, self.model.config.id2label.get(index, str(index)), float(probs[index]),
                      self.parameters,
                      statistics.median(times), full_length > self.limit, self.limit)


def predict(client: MlflowClient, sweep: str, text: str, cache: Path) -> list[Answer]:
    return [LoadedModel.load(label, folder).classify(text)
            for label, folder in model_sources(client, sweep, cache)]


def format_table(answers: list[Answer]) -> str:
    width = max(len("Model"), *(len(a.model) for a in answers))
    lines = [f"{'Model':<{width}}  {'Prediction':<10}  {'Confidence':>10}  {'Parameters':>12}  "
             f"{'Latency':>9}"]
    for a in answers:
        lines.append(f"{a.model:<{width}}  {a.prediction:<10}  {a.confidence:>10.1%}  "
                     f"{a.parameters:>12,}  {a.latency_ms:>6.1f} ms")
    if any(a.truncated for a in answers):
        lines.append("(the sentence was longer than a model's limit and was truncated for it)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.predict",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("text", help="the sentence to classify")
    parser.add_argument("--sweep", help="sweep name (default: the only sweep in the store)")
    add_tracking_uri_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.text.strip():
        print("error: the text is empty; give a sentence, e.g. \"NLP is fun.\"", file=sys.stderr)
        return 2
    transformers_logging.disable_progress_bar()
    try:
        check_store(args.tracking_uri, create=False)
        client = MlflowClient(args.tracking_uri)
        sweep = resolve_sweep(client, args.sweep)
        with no_progress_bars(), tempfile.TemporaryDirectory(prefix="predict-") as downloads:
            answers = predict(client, sweep, args.text, Path(downloads))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"sweep {sweep!r}: \"{args.text}\"")
    print(format_table(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
