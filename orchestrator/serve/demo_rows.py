"""What the demo's page and ``POST /predict`` show of each row: the model, its variant (fp32,
int8), its answer, and the figures its run recorded (``orchestrator/serve/model_costs.py`` says where each
comes from). The demo times no request: its latency is the run's recorded one, so that one name
never stands for two measurements.
"""

from __future__ import annotations

from dataclasses import asdict

from orchestrator.serve.model_costs import INT8, RECORDED_NOTE, Variant, threads_said
from orchestrator.serve.predict import Answer
from trainers.models.quantize import INT8_WEIGHTS


def row_json(row: Variant, answer: Answer | None) -> dict:
    """One row of ``POST /predict``'s answer: the model, its variant (fp32, int8), its answer
    (``prediction``, ``confidence`` and ``parameters`` ``None`` where its run has no file for the
    variant) and the figures its run recorded (``size_mb``, ``latency_ms_p50``, ``test_score``)."""
    unanswered = {"prediction": None, "confidence": None, "parameters": None, "token_limit": None,
                  "truncated": False}
    answered = unanswered if answer is None else asdict(answer)
    answered.pop("live_ms", None)  # the demo times no request: the latency shown is the run's
    return {**answered, "model": row.label, "variant": row.kind, "size_mb": row.size_mb,
            "latency_ms_p50": row.latency_ms_p50, "test_score": row.test_score}


def page_note(rows: list[Variant]) -> str:
    """What the page's figures are, under its table."""
    missing = any(row.kind == INT8 and row.folder is None for row in rows)
    unanswered = (f" An int8 row without an answer: its run recorded the variant's cost but has no "
                  f"{INT8_WEIGHTS} to answer with." if missing else "")
    return (RECORDED_NOTE.format(threads=threads_said(rows)) + " Test: the run's score on the task's "
            "test split." + unanswered)
