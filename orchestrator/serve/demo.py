"""``python -m orchestrator.serve.demo``: a web page where one sentence gets every model's answer.

The models are the ones ``orchestrator.serve.predict`` asks (the sweep's teachers and the best run of
each configuration, from MLflow); a sentence-pair task's page has two boxes, the pair's sentences.
Start-up finds every user mistake first (store, sweep, model artifacts, port) and only then starts
Ray and Ray Serve: one deployment, one replica, which loads every model (and each int8 variant
whose run has one, ``orchestrator/serve/model_costs.py``) once in its constructor and serves the page at
``/`` and the answers at ``POST /predict``; concurrent requests are answered in batches
(``orchestrator/serve/demo_batching.py``). Each row shows the size and the latency the model's run
recorded (the cost harness's batch-1 median), not a timing of the request. The page is plain HTML and
JavaScript; the proxy listens on 127.0.0.1 unless ``--host`` says otherwise. Ctrl-C shuts Serve
and Ray down.

Exit codes: 0 stopped with Ctrl-C, 1 Ray or the deployment did not start, 2 bad input.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from string import Template

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from orchestrator.report.best import best_runs
from orchestrator.report.reader import resolve_sweep
from orchestrator.run.local_ray import configure_environment, print_ray, start_ray
from orchestrator.serve.demo_batching import MAX_ONGOING, BatchedAnswers
from orchestrator.serve.demo_rows import page_note, row_json
from orchestrator.serve.model_costs import INT8, RECORDED_HEADER, SIZE_HEADER, Variant, variants
from orchestrator.serve.predict import Answer, load_variants, model_sources, sweep_task, text_problem
from orchestrator.tracking.store import add_tracking_uri_option, check_store, no_progress_bars, store_errors
from trainers.data.tasks import Task, get
from trainers.errors import UserError

APP_NAME = "metadistil-demo"
SERVE_LOGGER = "ray.serve"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# The replica only waits for requests and runs small models a few sentences at a time: it reserves
# no CPU, so the demo also starts on a machine whose CPUs are all reserved by a cluster's trials.
REPLICA_CPUS = 0
# Longer texts are refused rather than tokenized: every model would cut them at a few hundred
# tokens anyway, and tokenizing megabytes would stall the demo for everyone.
MAX_TEXT_CHARS = 20_000
EMPTY_TEXT = 'The text is empty: enter a sentence, e.g. "NLP is fun."'
EMPTY_SECOND = "The second sentence is empty: enter both sentences of the pair."
# What the button asks for, by task (the task's title where none is named here).
QUESTIONS = {"sst2": "sentiment", "mrpc": "paraphrase", "qqp": "duplicate", "cola": "acceptability",
             "qnli": "entailment", "rte": "entailment", "wnli": "entailment", "mnli": "entailment"}


class Sentence(BaseModel):
    """The body of ``POST /predict``: a sentence, or a pair task's two (``second``)."""

    text: str
    second: str | None = None


def validate_text(task: Task, text: str, second: str | None = None) -> str | None:
    """Why the text cannot be asked of the ``task``'s models, in one line; None when it can."""
    if not text.strip():
        return EMPTY_TEXT
    if task.pair and second is not None and not second.strip():
        return EMPTY_SECOND
    length = len(text) + len(second or "")
    if length > MAX_TEXT_CHARS:
        return f"The text has {length:,} characters; the demo takes at most {MAX_TEXT_CHARS:,}."
    problem = text_problem(task, text, second)
    if problem is None:
        return None
    return f"{problem[0].upper()}{problem[1:]}" + ("" if problem.endswith(('"', ".")) else ".")


def truncation_note(answers: list[Answer | None]) -> str:
    """Which models read only the beginning of the text, and how many tokens of it (a model and
    its int8 variant, which read the same tokens, once)."""
    cut: dict[int, list[str]] = {}
    models = {answer.model for answer in answers if answer}
    for answer in answers:
        if answer and answer.truncated and answer.model not in cut.get(answer.token_limit, []):
            cut.setdefault(answer.token_limit, []).append(answer.model)
    if not cut:
        return ""
    parts = [f"{'every model' if len(cut_models) == len(models) else ', '.join(cut_models)} read only "
             f"the first {limit} tokens" for limit, cut_models in sorted(cut.items())]
    return f"The text is longer than a model takes, so it was truncated: {'; '.join(parts)}."


class EveryModelDemo:
    """The Serve deployment: every variant (``rows``) loaded once, at start, then every row's
    answer per sentence (or pair: ``task`` is the sweep's, by name), a batch of requests at a time."""

    def __init__(self, sweep: str, task: str, rows: list[Variant]) -> None:
        self.sweep = sweep
        self.task = get(task)
        self.rows = rows
        self.answers = BatchedAnswers(load_variants(rows))

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve's hook for a class-based ingress: called in the replica, after ``__init__``."""
        api = FastAPI(title="MetaDistil demo", docs_url=None, redoc_url=None, openapi_url=None)
        api.get("/", response_class=HTMLResponse)(self.page)
        api.post("/predict")(self.predict)
        return api

    def page(self) -> str:
        question = QUESTIONS.get(self.task.name, self.task.title)
        boxes = (BOX.substitute(id="text", label="First sentence", rows=2, max_chars=MAX_TEXT_CHARS,
                                example="The cat sat on the mat.")
                 + BOX.substitute(id="second", label="Second sentence", rows=2, max_chars=MAX_TEXT_CHARS,
                                  example="A cat was sitting on the mat.")
                 if self.task.pair else
                 BOX.substitute(id="text", label="Enter text", rows=3, max_chars=MAX_TEXT_CHARS,
                                example="NLP is fun."))
        return PAGE.substitute(sweep=html.escape(self.sweep), count=len({row.label for row in self.rows}),
                               boxes=boxes, task=html.escape(self.task.title), question=question,
                               size=SIZE_HEADER, latency=RECORDED_HEADER, metric=self.task.main_metric,
                               figures=html.escape(page_note(self.rows)),
                               asked="One sentence pair" if self.task.pair else "One sentence",
                               empty_text=json.dumps(EMPTY_TEXT), empty_second=json.dumps(EMPTY_SECOND))

    async def predict(self, sentence: Sentence) -> JSONResponse:
        problem = validate_text(self.task, sentence.text, sentence.second)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        answers, batch = await self.answers((sentence.text, sentence.second))
        return JSONResponse({"answers": [row_json(row, answer) for row, answer in zip(self.rows, answers)],
                             "note": truncation_note(answers), "batch": batch})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.serve.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", help="sweep name (default: the only sweep in the store)")
    add_tracking_uri_option(parser)
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address the page is served on (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo-") as downloads:
        try:
            check_port(args.host, args.port)
            check_store(args.tracking_uri, create=False)
            with store_errors(args.tracking_uri):
                client = MlflowClient(args.tracking_uri)
                sweep = resolve_sweep(client, args.sweep)
                chosen = best_runs(client, sweep)
                task = sweep_task(chosen, sweep)
                with no_progress_bars():
                    rows = variants(client, chosen, model_sources(client, sweep, chosen, Path(downloads)),
                                    task)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # while reading MLflow or fetching models: nothing started yet
            print("\ninterrupted before the demo started", file=sys.stderr)
            return 130
        return serve_demo(args, sweep, task, rows)


def check_port(host: str, port: int) -> None:
    """Bind and release the port, so that a busy port or a foreign address fails in one line
    before Ray starts (Serve's proxy would only log the failure and retry)."""
    if not 0 < port < 65536:
        raise UserError(f"--port {port}: expected 1 to 65535")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the proxy binds
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"cannot serve on {host}:{port} ({error.strerror or error}); pass "
                        "a free --port, and a --host of this machine") from None


def serve_demo(args: argparse.Namespace, sweep: str, task: Task, rows: list[Variant]) -> int:
    """Start Ray and the deployment, then wait for Ctrl-C; the models' folders must stay on disk
    until the replica has loaded them."""
    configure_environment()  # read by Ray at import, so first: token auth, as the sweep's Ray
    from ray import serve

    # Serve's INFO lines on the driver repeat what print_start says, with timestamps.
    logging.getLogger(SERVE_LOGGER).setLevel(logging.WARNING)
    try:
        context = start_ray()
        serve.start(http_options={"host": args.host, "port": args.port}, proxy_location="HeadOnly")
        # One try: a model that does not load (a broken artifact) will not load on a retry either.
        deployment = serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": REPLICA_CPUS},
                                      max_ongoing_requests=MAX_ONGOING,
                                      max_constructor_retry_count=1)(serve.ingress()(EveryModelDemo))
        serve.run(deployment.bind(sweep, task.name, rows), name=APP_NAME, route_prefix="/")
        print_start(context, args, sweep, task, rows)
        while True:
            time.sleep(3600)
    except (RuntimeError, ConnectionError) as error:  # Ray or the replica did not start
        print(f"error: the demo did not start: {why_not_started(error)}", file=sys.stderr)
        stop()
        return 1
    except KeyboardInterrupt:
        # A second Ctrl-C would cut the shutdown short and leave Serve's actors behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\nstopping the demo…", flush=True)
        stop()
        print("stopped")
        return 0


def stop() -> None:
    """Delete the demo's application (the replica lets go of the models), then stop Ray, and with
    it Serve's controller and proxy."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        return
    if APP_NAME in serve.status().applications:
        serve.delete(APP_NAME)
    ray.shutdown()


def why_not_started(error: Exception) -> str:
    """One line: the exception that ended the replica's constructor (Serve keeps the replica's
    traceback in the deployment's status, not in the error it raises), else Ray's own error."""
    import ray
    from ray import serve

    applications = serve.status().applications if ray.is_initialized() else {}
    deployments = applications[APP_NAME].deployments if APP_NAME in applications else {}
    messages = [d.message for d in deployments.values() if d.message] or [str(error)]
    lines = [line.strip() for line in messages[0].splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def print_start(context, args: argparse.Namespace, sweep: str, task: Task, rows: list[Variant]) -> None:
    print_ray(context)
    models = len({row.label for row in rows})
    quantized = sum(row.kind == INT8 and row.folder is not None for row in rows)
    print(f"demo: sweep {sweep!r} ({task.title}{', sentence pairs' if task.pair else ''}), "
          f"{models} model{'s' if models > 1 else ''} loaded"
          + (f", and {quantized} int8 variant{'s' if quantized > 1 else ''}" if quantized else ""))
    if args.host not in ("127.0.0.1", "localhost"):
        print(f"note: --host {args.host} makes the page reachable from other machines, without a login")
    print(f"open http://{args.host}:{args.port}/ · stop with Ctrl-C", flush=True)


PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$task, every model of sweep $sweep</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
         color: #222; }
  h1 { font-size: 1.5rem; margin-bottom: .25rem; }
  .lead { color: #555; margin-top: 0; }
  code { font-size: 1em; background: #f4f4f4; padding: 0 .25em; }
  label { display: block; font-weight: 600; margin: 1rem 0 .3rem; }
  textarea { width: 100%; box-sizing: border-box; font: inherit; padding: .5rem; }
  button { font: inherit; padding: .45rem 1.2rem; margin-top: .5rem; cursor: pointer; }
  #message { color: #b42318; min-height: 1.2em; }
  #note { color: #7a5b00; }
  table { border-collapse: collapse; width: 100%; margin-top: .5rem; }
  th, td { padding: .4rem .7rem; border-bottom: 1px solid #ddd; text-align: left; }
  th { background: #f4f4f4; }
  .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .positive { color: #1a7f37; font-weight: 600; }
  .negative { color: #b42318; font-weight: 600; }
</style>
</head>
<body>
<h1>$asked, every model</h1>
<p class="lead">Sweep <code>$sweep</code> ($task): its $count models (the teachers and the best student
of each method, from MLflow), and their int8 variants where their runs have them, classify the same
text.</p>
<form id="form">
$boxes  <button id="predict" type="submit">Predict $question</button>
</form>
<p id="message" role="alert"></p>
<table id="results">
  <thead><tr><th>Model</th><th>Variant</th><th>Prediction</th><th class="num">Confidence</th>
  <th class="num">Parameters</th><th class="num">$size</th><th class="num">$latency</th>
  <th class="num">Test $metric</th></tr></thead>
  <tbody></tbody>
</table>
<p id="note"></p>
<p id="figures" class="lead">$figures</p>
<script>
const form = document.getElementById("form");
const text = document.getElementById("text");
const second = document.getElementById("second");  // a sentence-pair task's second box, else null
const button = document.getElementById("predict");
const message = document.getElementById("message");
const note = document.getElementById("note");
const rows = document.querySelector("#results tbody");

function cell(row, value, className) {
  const td = row.insertCell();
  td.textContent = value;
  if (className) td.className = className;
}

function figure(value, unit) {  // a figure the run recorded; "–" where it recorded none
  return value === null ? "–" : value.toFixed(1) + unit;
}

function show(answers) {
  for (const a of answers) {
    const row = rows.insertRow();
    cell(row, a.model);
    cell(row, a.variant);
    if (a.prediction === null) {  // the run recorded the variant's cost, but has no file to answer with
      cell(row, "(no file)");
      cell(row, "–", "num");
      cell(row, "–", "num");
    } else {
      cell(row, a.prediction, a.prediction);
      cell(row, (100 * a.confidence).toFixed(1) + "%", "num");
      cell(row, a.parameters.toLocaleString("en-US"), "num");
    }
    cell(row, figure(a.size_mb, " MB"), "num");
    cell(row, figure(a.latency_ms_p50, " ms"), "num");
    cell(row, a.test_score === null ? "–" : "$metric" === "matthews" ? a.test_score.toFixed(3)
                                            : (100 * a.test_score).toFixed(1) + "%", "num");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  rows.replaceChildren();
  note.textContent = "";
  if (!text.value.trim() || (second && !second.value.trim())) {  // nothing to ask the models
    message.textContent = text.value.trim() ? $empty_second : $empty_text;
    return;
  }
  message.textContent = "Asking $count models…";
  button.disabled = true;
  try {
    const response = await fetch("predict", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(second ? {text: text.value, second: second.value} : {text: text.value}),
    });
    const body = await response.json();
    if (!response.ok) {
      message.textContent = body.error || "The demo refused the request (HTTP " + response.status + ").";
      return;
    }
    message.textContent = "";
    show(body.answers);
    note.textContent = body.note;
  } catch (error) {
    message.textContent = "No answer from the demo server (" + error.message + "); is it still running?";
  } finally {
    button.disabled = false;
  }
});
</script>
</body>
</html>
""")


BOX = Template("""  <label for="$id">$label</label>
  <textarea id="$id" rows="$rows" maxlength="$max_chars" placeholder="$example"></textarea>
""")


if __name__ == "__main__":
    # main() of the module imported by its name, not of __main__: Ray pickles a class of __main__ by
    # value (its methods lose the globals their annotations name), while a class of
    # orchestrator.serve.demo the replica imports.
    from orchestrator.serve import demo

    sys.exit(demo.main())
