"""``python -m orchestrator.serve.predict "NLP is fun."``: every model of a sweep answers one sentence
(``python -m orchestrator.serve.predict "first" "second"``: one pair, for a sentence-pair task).

The sweep's teachers and, for each distillation configuration, its best run (highest value of the
task's main validation metric at the last epoch, over seeds: SST-2's accuracy, MRPC's F1) are
loaded from MLflow — the configuration's registered
``models:/<sweep>.<configuration>@best`` (``orchestrator/serve/registry.py``); where the store has no
registry or the configuration is not registered yet (saying so), the run's trial folder while it
is still there (``model_dir`` tag), else the run's logged MLflow model (the transformers flavor,
``trainers/record/model_log.py``), else, for a run logged before models were, its ``model/`` artifact
folder — and each prints, with a row ``· int8`` below it for its int8 variant where the run has one
(``orchestrator/serve/model_costs.py``),
Model | Prediction | Confidence | Parameters | Size | Latency (run) | Test <metric> | Latency (now).
Size, "Latency (run)" and the test score are what the run logged when the model finished training
(the cost harness, ``trainers/models/cost.py``: batch 1, median over 128 test sentences); "Latency (now)"
is this command's own timer on this sentence, here (median of 5 forward passes, batch of one,
after one untimed pass).

A pair task's models read the pair as they were trained on it (``trainers/data/tokens.py``): one
sequence ``tokenizer(first, second)``, with segment ids where the architecture has them. The
sweep's task (its runs' ``task`` tag) says whether it takes one sentence or two; the wrong number
is refused in one line before a model is loaded.

Loading and classifying are separate (:class:`LoadedModel`), so that ``orchestrator.serve.demo`` loads
every model once and then answers any number of sentences with them, several at a time
(:meth:`LoadedModel.classify_many`: one forward pass over the sentences padded to the longest).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow.transformers
import torch
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.tracking import MlflowClient
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from orchestrator.check.artifacts import artifact_error, check_model, first_line, local_path, rebuild_hint
from orchestrator.report.best import best_runs
from orchestrator.report.reader import ReportError, TrialRun, resolve_sweep
from orchestrator.serve.model_costs import (
    FP32,
    RECORDED_HEADER,
    RECORDED_NOTE,
    SIZE_HEADER,
    Variant,
    number,
    score,
    threads_said,
    variants,
)
from orchestrator.serve.registry import best_version_uri
from orchestrator.tracking.store import (
    add_tracking_uri_option,
    check_store,
    no_progress_bars,
    redact,
    store_errors,
)
from trainers.data.tasks import Task, TaskError, get
from trainers.data.tokens import has_segments
from trainers.errors import UserError
from trainers.models.build import ModelError, build_model, count_parameters
from trainers.models.pruned_bert import register
from trainers.models.quantize import INT8_WEIGHTS, int8_linears, load_int8
from trainers.record.artifact_files import model_problem
from trainers.record.artifacts import MODEL_ARTIFACT_DIR, MODEL_DIR_TAG

TIMED_PASSES = 5
LIVE_HEADER = "Latency (now)"
Asked = tuple[str, str | None]  # a sentence, or a pair's two


@dataclass(frozen=True)
class Answer:
    model: str
    prediction: str
    confidence: float
    parameters: int
    truncated: bool  # the sentence had more tokens than the model takes: the rest was cut off
    token_limit: int
    # predict's own timer on this sentence, here (median of TIMED_PASSES passes); the demo, which
    # answers sentences in batches, times none and shows the run's recorded latency instead
    live_ms: float | None = None


def sweep_task(chosen: list[tuple[str, TrialRun]], sweep: str) -> Task:
    """The task the sweep's models were trained on (one ``data:`` section, so one task a sweep)."""
    names = {run.task for _, run in chosen}
    if len(names) != 1:
        raise TaskError(f"sweep {sweep!r} mixes tasks ({', '.join(sorted(names))}); its models do not "
                        "answer the same question: report each task's sweep on its own")
    return get(names.pop())


def text_problem(task: Task, text: str, second: str | None) -> str | None:
    """Why the sentence (or pair) cannot be asked of a ``task`` model, in one line; None if it can."""
    if not text.strip():
        return "the text is empty; give a sentence, e.g. \"NLP is fun.\""
    if task.pair and second is None:
        return (f"{task.title} is a sentence-pair task: give two sentences, e.g. "
                f"\"The cat sat on the mat.\" \"A cat was sitting on the mat.\"")
    if task.pair and not second.strip():
        return "the second sentence is empty; give both sentences of the pair"
    if not task.pair and second is not None:
        return f"{task.title} classifies one sentence: give one, not two"
    return None


def model_folder(client: MlflowClient, run: TrialRun, cache: Path, registered: str | None = None,
                 fix: str = "") -> Path:
    """The model to load for a run: its configuration's registered ``best`` version (``registered``:
    where its files are), else the run's trial folder if it still holds a model, else the run's
    MLflow model, else its older ``model/`` artifact. An MLflow model is a folder holding
    ``MLmodel``. The files are checked before anything loads them: one that is missing or
    unreadable is an :class:`ArtifactError` naming the run, the path and ``fix``
    (:func:`~orchestrator.check.artifacts.rebuild_hint`)."""
    target = cache / run.run_id
    if registered:
        return check_model(fetch(client, registered, target, run, fix), run.run_name, run.run_id, fix,
                           "registered model")
    found = client.get_run(run.run_id)
    folder = found.data.tags.get(MODEL_DIR_TAG)
    if folder and model_problem(Path(folder) / MODEL_ARTIFACT_DIR) is None:
        return Path(folder) / MODEL_ARTIFACT_DIR
    if found.outputs and found.outputs.model_outputs:
        location = client.get_logged_model(found.outputs.model_outputs[-1].model_id).artifact_location
        return check_model(fetch(client, location, target, run, fix), run.run_name, run.run_id, fix)
    if not (target / MODEL_ARTIFACT_DIR).is_dir():
        target.mkdir(parents=True, exist_ok=True)
        try:
            client.download_artifacts(run.run_id, MODEL_ARTIFACT_DIR, str(target))
        except Exception as error:  # MLflow raises several types for a missing artifact
            raise ReportError(f"run {run.run_name} ({run.run_id}) has no '{MODEL_ARTIFACT_DIR}/' "
                              f"artifact nor MLflow model ({type(error).__name__}); run its sweep again "
                              "with the storage that holds its trial's folder: that logs the model"
                              + (f"; {fix}" if fix else "")) from None
    return check_model(target / MODEL_ARTIFACT_DIR, run.run_name, run.run_id, fix,
                       f"'{MODEL_ARTIFACT_DIR}/' artifact")


def fetch(client: MlflowClient, location: str, target: Path, run: TrialRun | None = None,
          fix: str = "") -> Path:
    """A model's files by their location, read in the client's store (a ``models:/`` URI would be
    resolved in MLflow's default store); a local one is read where it is, not copied. Files the
    store cannot hand over are an :class:`ArtifactError` naming ``run``."""
    local = location.startswith("file:")
    if not local:
        target.mkdir(parents=True, exist_ok=True)
    try:
        return Path(download_artifacts(artifact_uri=location, dst_path=None if local else str(target),
                                       tracking_uri=client.tracking_uri))
    except (MlflowException, OSError) as error:
        raise artifact_error(run.run_name if run else "?", run.run_id if run else "?", "model",
                             local_path(location) or location, f"cannot be fetched ({first_line(error)})",
                             fix) from None


def model_sources(client: MlflowClient, sweep: str, chosen: list[tuple[str, TrialRun]],
                  cache: Path) -> list[tuple[str, Path]]:
    """(label, model folder) of every model to ask (``chosen``: :func:`best_runs`), teachers first:
    each configuration's ``models:/<name>@best`` where the registry has it
    (``orchestrator/serve/registry.py``), else its best run's model, with a note on stderr saying which;
    downloads land in ``cache``."""
    notes = []
    fix = rebuild_hint(client, sweep)
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
    sources = [(label, model_folder(client, run, cache, registered.get(run.run_id), fix))
               for label, run in chosen]
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

    def __init__(self, label: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 parameters: int | None = None) -> None:
        """``parameters``: the count to show where the model's own ``Parameter`` objects miss some
        (an int8 variant's packed Linear weights are not ``Parameter`` objects)."""
        self.label = label
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.limit = token_limit(model, tokenizer)
        self.parameters = count_parameters(model) if parameters is None else parameters
        # Dynamic int8 quantizes each Linear layer's input with one scale a call, taken over the
        # whole padded batch: a batch-mate, or padding, would move the answer (by 1.6e-4 of
        # confidence in tests/orchestrator/serve/test_demo.py). An int8 variant answers each alone.
        self.alone = bool(int8_linears(model))

    @classmethod
    def load(cls, label: str, folder: Path) -> LoadedModel:
        """From a saved model's folder, or a downloaded MLflow model (it holds ``MLmodel``)."""
        try:
            if (folder / MLMODEL_FILE_NAME).is_file():
                register()  # a pruned student's type (trainers/models/pruned_bert.py)
                components = mlflow.transformers.load_model(str(folder), return_type="components")
                return cls(label, components["model"], components["tokenizer"])
            built = build_model(str(folder), "tiny", train_texts=(), cache_dir=folder)
        except ModelError as error:
            raise ModelError(f"{label}: {error}") from None
        except (OSError, ValueError, KeyError, RuntimeError, MlflowException) as error:
            # Files that passed model_folder's check but hold something else (a garbled config):
            # one line, not the loader's traceback.
            raise ModelError(f"{label}: the model in {folder} does not load ({first_line(error)}); "
                             "re-run its sweep to rebuild it, or point --tracking-uri at the store "
                             "that has it") from None
        return cls(label, built.model, built.tokenizer)

    def classify_many(self, asked: Sequence[Asked]) -> list[Answer]:
        """Each sentence's (or pair's, ``second``) label and its probability, from one forward pass
        over them all, padded to the longest after each is cut to the limit (a pair's longer
        sentence first, as in training). The attention mask keeps padding out of every answer.
        Segment ids as in training: for a pair, into a model that has them; none for one sentence.
        A sentence shorter than the limit once cut was not cut: only one that fills it is
        tokenized again in full, to tell. An int8 variant runs once a sentence instead (``alone``)."""
        if self.alone and len(asked) > 1:
            return [answer for one in asked for answer in self.classify_many([one])]
        pairs = [second is not None for _, second in asked]
        if len(set(pairs)) != 1:
            raise ValueError("asked mixes single sentences and pairs; one task takes one kind")
        texts, seconds = [text for text, _ in asked], [second for _, second in asked]
        inputs = self.tokenizer(texts, seconds if pairs[0] else None, truncation=True, max_length=self.limit,
                                padding=True, return_tensors="pt",
                                return_token_type_ids=pairs[0] and has_segments(self.model))
        with torch.inference_mode():
            probs = torch.softmax(self.model(**inputs).logits, dim=-1)
        confidence, index = probs.max(dim=-1)
        names = self.model.config.id2label
        return [Answer(self.label, names.get(i, str(i)), p, self.parameters,
                       length >= self.limit and len(self.tokenizer(text, second)["input_ids"]) > self.limit,
                       self.limit)
                for i, p, length, (text, second) in zip(index.tolist(), confidence.tolist(),
                                                         inputs["attention_mask"].sum(dim=1).tolist(), asked)]

    def classify(self, text: str, second: str | None = None) -> Answer:
        """:meth:`classify_many` of one sentence, and its latency by this process's own timer: the
        median of ``TIMED_PASSES`` forward passes at batch 1, after one untimed pass."""
        answer = self.classify_many([(text, second)])[0]
        inputs = self.tokenizer(text, second, truncation=True, max_length=self.limit, return_tensors="pt",
                                return_token_type_ids=second is not None and has_segments(self.model))
        times = []
        with torch.inference_mode():
            self.model(**inputs)  # untimed: the first pass pays one-off initialisation
            for _ in range(TIMED_PASSES):
                started = time.perf_counter()
                self.model(**inputs)
                times.append(1000 * (time.perf_counter() - started))
        return replace(answer, live_ms=statistics.median(times))


def load_variants(rows: Sequence[Variant]) -> list[LoadedModel | None]:
    """The model of each row (:func:`~orchestrator.serve.model_costs.variants`), in order; ``None`` for a
    row whose run has no file for it. An int8 row follows its fp32 row and shares its tokenizer
    and parameter count (the same weights, stored as int8)."""
    loaded: list[LoadedModel | None] = []
    fp32: dict[str, LoadedModel] = {}
    for row in rows:
        if row.folder is None:
            loaded.append(None)
        elif row.kind == FP32:
            fp32[row.label] = LoadedModel.load(row.label, Path(row.folder))
            loaded.append(fp32[row.label])
        else:
            try:
                model = load_int8(Path(row.folder))
            except UserError as error:
                raise ModelError(f"{row.label} (int8): {error}") from None
            base = fp32[row.label]
            loaded.append(LoadedModel(row.label, model, base.tokenizer, parameters=base.parameters))
    return loaded


def predict(client: MlflowClient, sweep: str, text: str, second: str | None, cache: Path
            ) -> tuple[Task, list[Variant], list[Answer | None]]:
    """Every variant's row and answer (``None`` where its run has no file for it), once the text
    suits the sweep's task (else a one-line ``TaskError``)."""
    chosen = best_runs(client, sweep)
    task = sweep_task(chosen, sweep)
    problem = text_problem(task, text, second)
    if problem:
        raise TaskError(f"sweep {sweep!r}: {problem}")
    rows = variants(client, chosen, model_sources(client, sweep, chosen, cache), task)
    return task, rows, [None if model is None else model.classify(text, second)
                        for model in load_variants(rows)]


def format_table(task: Task, rows: list[Variant], answers: list[Answer | None]) -> str:
    """The rows as a text table, and what its figures are below it."""
    names = [row.label if row.kind == FP32 else f"  · {row.kind}" for row in rows]
    width = max(len("Model"), *(len(name) for name in names))
    test = f"Test {task.main_metric}"
    lines = [f"{'Model':<{width}}  {'Prediction':<10}  {'Confidence':>10}  {'Parameters':>12}  "
             f"{SIZE_HEADER:>8}  {RECORDED_HEADER:>13}  {test:>13}  {LIVE_HEADER:>13}"]
    for name, row, a in zip(names, rows, answers):
        answered = (f"{a.prediction:<10}  {a.confidence:>10.1%}  {a.parameters:>12,}" if a else
                    f"{'(no file)':<10}  {'–':>10}  {'–':>12}")
        lines.append(f"{name:<{width}}  {answered}  {number(row.size_mb, ' MB'):>8}  "
                     f"{number(row.latency_ms_p50, ' ms'):>13}  {score(task, row.test_score):>13}  "
                     f"{number(a.live_ms if a else None, ' ms'):>13}")
    if any(a and a.truncated for a in answers):
        lines.append("(the text was longer than a model's limit and was truncated for it)")
    if any(a is None for a in answers):
        lines.append(f"(no file: the run recorded this variant's cost but has no {INT8_WEIGHTS} to "
                     "answer with)")
    lines.append(textwrap.fill(RECORDED_NOTE.format(threads=threads_said(rows)) + f" {test}: recorded by "
                               f"the run on the task's test split. {LIVE_HEADER}: this sentence, timed "
                               f"here, the median of {TIMED_PASSES} passes at batch 1.", width=100))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.serve.predict",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("text", help="the sentence to classify (a pair task's first sentence)")
    parser.add_argument("second", nargs="?", help="a sentence-pair task's second sentence (MRPC, RTE, …)")
    parser.add_argument("--sweep", help="sweep name (default: the only sweep in the store)")
    add_tracking_uri_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.text.strip():  # whatever the task: refused before the store is read
        print(f"error: {text_problem(get('sst2'), args.text, None)}", file=sys.stderr)
        return 2
    transformers_logging.disable_progress_bar()
    try:
        check_store(args.tracking_uri, create=False)
        with store_errors(args.tracking_uri):
            client = MlflowClient(args.tracking_uri)
            sweep = resolve_sweep(client, args.sweep)
            with no_progress_bars(), tempfile.TemporaryDirectory(prefix="predict-") as downloads:
                task, rows, answers = predict(client, sweep, args.text, args.second, Path(downloads))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    asked = f'"{args.text}"' + (f' / "{args.second}"' if task.pair else "")
    print(f"sweep {sweep!r} ({task.title}): {asked}")
    print(format_table(task, rows, answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
