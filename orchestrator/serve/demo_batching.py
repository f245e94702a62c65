"""The demo's answers under load: concurrent requests are answered together, a batch at a time
(Ray Serve's ``@serve.batch``), every model running once per batch on all its sentences padded to
the longest (``LoadedModel.classify_many``), instead of once per request.

Why batches. Each ``POST /predict`` asks every model (8 for the default sweep) one sentence. Asked
one request at a time, a forward pass pays its fixed costs (Python's module calls: about 2 ms of a
BERT-family forward at batch 1 here, ``trainers/models/cost.py``; the tokenizer call; the replica's
per-request hand-offs) once per request and model; in a batch of 8 it pays them once for 8.

How a batch forms. A request waits at most ``BATCH_WAIT_S`` for others to join it, up to
``MAX_BATCH`` sentences, and only one batch runs at a time (``max_concurrent_batches=1``: the
replica's CPU threads are the machine's, so two batches at once would only share them; it also
keeps each tokenizer to one thread, which a fast tokenizer requires). While a batch runs the
requests that arrive queue up and form the next one, so under load the batch size follows the
number of clients waiting, and the wait only matters for a request that arrives alone. The batch
runs on the replica's event loop itself: the requests that arrive meanwhile wait in Serve's own
loop (another thread) and join the next batch. Run in a worker thread instead
(``asyncio.to_thread``), the batch fought the event loop for the GIL (a small model's forward pass
is half Python): batches of 2.2 sentences on average instead of 5.2 under 8 clients, 64 ms of the
replica's CPU a request instead of 56, for no more requests/s (12.5 against 13.6, one A/B run).

The figures, chosen by ``benchmarks/bench_serve.py`` (the default sweep's 8 models, one replica,
8 concurrent clients, 200 requests, this 2-core machine; docs/predict-and-demo.md has the runs):

- ``MAX_BATCH`` 8: the batches under 8 clients are about 4 to 8 sentences (clients spend part of
  each round trip outside the server), so a larger cap is never reached by the demo's measured load;
  a cap still bounds what one batch costs when more clients come, since the replica accepts
  ``MAX_ONGOING`` requests and the rest wait at Serve's proxy.
- ``BATCH_WAIT_S`` 0.01: under load a batch is waiting anyway for the one before it, so the wait
  adds nothing there; a lone request (one user typing) pays it in full, so it stays small next to
  the ~50-100 ms the models take to answer one sentence. A longer wait gathered no larger batches
  under 8 clients and only lengthened the lone request's answer.
- ``MAX_ONGOING`` 16: Serve's default of 5 requests per replica would cap a batch at 5; twice the
  batch lets the next batch queue up in the replica while one runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.serve.predict import Answer, Asked, LoadedModel

MAX_BATCH = 8
BATCH_WAIT_S = 0.01
MAX_ONGOING = 16


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

        self.models = list(models)
        # The queue that gathers a batch belongs to this object's answering method.
        self.batch = serve.batch(max_batch_size=MAX_BATCH,
                                 batch_wait_timeout_s=BATCH_WAIT_S)(self.answer_batch)

    async def __call__(self, asked: Asked) -> tuple[list[Answer | None], int]:
        """Every model's answer to ``asked``, and how many sentences its batch held."""
        return await self.batch(asked)

    async def answer_batch(self, asked: list[Asked]) -> list[tuple[list[Answer | None], int]]:
        answers = answer_all(self.models, asked)  # on the event loop: see the module's notes
        return [(each, len(asked)) for each in answers]
