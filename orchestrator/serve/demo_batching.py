"""The demo's answers under load: concurrent requests are answered together, a batch at a time
(Ray Serve's ``@serve.batch``), every model running once per batch on all its sentences padded to
the longest (``LoadedModel.classify_many``), instead of once per request. An int8 variant runs once
a sentence within the batch (``LoadedModel.alone``: its activation scale is the whole batch's), so
that no answer depends on the requests it was batched with.

What a request cost, measured before choosing (the default sweep's 8 models, this project's 2-core
shared machine; CPU time, which another process's load hardly moves; ``benchmarks/bench_serve.py``
prints it per process, and docs/predict-and-demo.md has the runs):

- the demo before batches timed every model on every request (one untimed and 5 timed passes,
  and the sentence tokenized twice): 412 and 443 ms of the replica's CPU a request (two runs).
  Answering with one pass and showing the latency the run recorded instead
  (``orchestrator/serve/demo_rows.py``) is most of the gain;
- the forward passes are nearly all the rest: in process, the 8 models take 54 ms of CPU for one
  sentence and 30 ms a sentence in a batch of 8 (padded to its longest), of which tokenizing is
  1.3 ms and 1.1 ms a sentence. A batch spreads each forward pass's fixed cost (a BERT-family
  forward's Python module calls, about 2 ms at batch 1, ``trainers/models/cost.py``) over its
  sentences; no batching (``MAX_BATCH`` 1) measured 8.9 requests/s and 87 ms of replica CPU a
  request, batches 12.5 and 63 (8 clients, one A/B run);
- Serve's HTTP proxy takes 6-10 ms a request, the clients about 1.

The settings, each from an A/B run of ``bench_serve.py --baseline HEAD`` (8 clients, 2 rounds of
200 requests; one run each, on a machine others were loading):

- the batch runs on the replica's event loop: the requests that arrive meanwhile wait in Serve's
  own loop (another thread) and join the next batch. Run in a worker thread
  (``asyncio.to_thread``), the batch fought the event loop for the GIL (a small model's forward
  pass is half Python): batches of 2.2 sentences on average instead of 5.2, 64 ms of replica CPU
  a request instead of 56, 12.5 requests/s against 13.6. One batch at a time
  (``max_concurrent_batches=1``), so each fast tokenizer is used by one thread, as it requires.
- ``REPLICA_THREADS`` 1 torch thread (what Ray gives a replica that reserves no CPU, said here so
  that it does not change with Ray's default): with 2, the replica spent 207 ms of CPU a request
  instead of 53 and answered 4.6 requests/s instead of 15.4: the machine's second core is the
  proxy's and the clients', and two threads on small matrices mostly wait for each other.
- ``BATCH_WAIT_S`` 0.01 (Serve's default): under load the next batch has queued up while the last
  one ran, so nothing waits for it; a lone request pays it in full. 0.05 gathered larger batches
  under 8 clients (7.0 against 5.2 sentences; 7.2 against 6.6 requests/s, within the runs' noise)
  and cost one client 50 ms a request (p50 0.22 against 0.17 s).
- ``MAX_BATCH`` 8: 8 clients never fill more (batches of 5 to 6 on average, 8 at most), and it bounds
  one batch at about 240 ms of the models' CPU (in process) when more clients come.
- ``MAX_ONGOING`` 16: Serve lets a replica hold 5 requests by default, which would cap a batch at
  5; twice ``MAX_BATCH`` lets the next batch queue up in the replica while one runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from orchestrator.serve.predict import Answer, Asked, LoadedModel

MAX_BATCH = 8
BATCH_WAIT_S = 0.01
MAX_ONGOING = 16
REPLICA_THREADS = 1


def answer_all(models: Sequence[LoadedModel | None], asked: Sequence[Asked]) -> list[list[Answer | None]]:
    """For each of ``asked``, every model's answer in ``models``' order (``None`` for a row with no
    model), each model running once on all of ``asked``."""
    by_model = [[None] * len(asked) if model is None else model.classify_many(asked) for model in models]
    return [list(answers) for answers in zip(*by_model)]


class BatchedAnswers:
    """Every model's answers to one sentence (or pair) at a time, computed a batch at a time."""

    def __init__(self, models: Sequence[LoadedModel | None]) -> None:
        # Ray is imported here, in the replica that answers, not where this module is imported:
        # the demo's command must set Ray's environment before Ray's first import.
        from ray import serve

        torch.set_num_threads(REPLICA_THREADS)
        self.models = list(models)
        # The queue that gathers a batch belongs to this object's answering method.
        self.batch = serve.batch(max_batch_size=MAX_BATCH,
                                 batch_wait_timeout_s=BATCH_WAIT_S)(self.answer_batch)

    async def __call__(self, asked: Asked) -> tuple[list[Answer | None], int]:
        """Every model's answer to ``asked``, and how many sentences its batch held."""
        return await self.batch(asked)

    async def answer_batch(self, asked: list[Asked]) -> list[tuple[list[Answer | None], int]]:
        answers = answer_all(self.models, asked)  # on the event loop (the module's notes say why)
        return [(each, len(asked)) for each in answers]
