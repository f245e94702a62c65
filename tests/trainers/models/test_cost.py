"""The cost harness (``trainers/models/cost.py``): sane positive figures, the thread count pinned for the
measurement and given back after, side-by-side measurement of an fp32 model and its int8 variant,
and too few sentences refused in one line."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import SST2, VOCAB
from trainers.data.glue import read_tsv
from trainers.models.build import build_model
from trainers.models.cost import BATCH, Cost, CostError, measure, measure_side_by_side
from trainers.models.cost_names import COST, INT8, SIZE, TIMED
from trainers.models.quantize import int8

SENTENCES = list(read_tsv(SST2 / "test.tsv").sentences[:BATCH * 2])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_model("tinybert", "tiny", train_texts=(), cache_dir=tmp_path_factory.mktemp("m"),
                       vocab_file=VOCAB)


def _sane(cost: Cost, threads: int) -> None:
    assert cost.size_mb > 0 and cost.throughput_b32 > 0 and cost.threads == threads
    assert 0 < cost.latency_ms_median <= cost.latency_ms_p95


def test_measure_returns_positive_figures_and_restores_threads(built):
    torch.set_num_threads(2)
    built.model.train()
    cost = measure(built.model, built.tokenizer, SENTENCES, threads=1)
    _sane(cost, 1)
    assert torch.get_num_threads() == 2 and built.model.training  # as the caller had them
    assert set(cost.metrics("_int8")) == {"size_mb_int8", "latency_ms_p50_int8", "latency_ms_p95_int8",
                                          "throughput_b32_int8"}


def test_fp32_and_int8_side_by_side(built):
    costs = measure_side_by_side({"fp32": built.model, "int8": int8(built.model)}, built.tokenizer,
                                 SENTENCES, threads=1, rounds=2)
    for cost in costs.values():
        _sane(cost, 1)
    assert costs["int8"].size_mb < costs["fp32"].size_mb  # the timings are the benchmark's business


def test_too_few_sentences_are_refused(built):
    with pytest.raises(CostError, match="3 sentences given; .* needs at least 32"):
        measure(built.model, built.tokenizer, SENTENCES[:3])


def test_traced_measurement_times_a_trace_that_answers_as_the_model(built):
    """``traced``: each model timed as its TorchScript trace; the model's config is left as it was."""
    costs = measure_side_by_side({"fp32": built.model, "int8": int8(built.model)}, built.tokenizer,
                                 SENTENCES, threads=1, traced=True)
    for cost in costs.values():
        _sane(cost, 1)
        assert cost.traced
    assert built.model.config.return_dict  # switched off only while tracing


def test_the_logged_names_are_the_ones_the_report_reads():
    """``trainers.models.cost_names`` (torch-free, read by the report) names what ``Cost.metrics`` logs."""
    cost = Cost(size_mb=1.0, latency_ms_median=2.0, latency_ms_p95=3.0, throughput_b32=4.0, threads=1)
    assert tuple(cost.metrics()) == COST
    assert tuple(cost.metrics(INT8)) == tuple(name + INT8 for name in COST)
    assert set(TIMED) == {name + suffix for name in COST if name != SIZE for suffix in ("", INT8)}
