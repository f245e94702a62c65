"""The names under which a finished model's int8 variant and cost are logged
(``trainers/models/compressed.py`` logs them, the report reads them), apart from the code that measures
them: this module imports nothing, so the driver and the report name the metrics without loading torch.

- ``test_<metric>`` + :data:`INT8`: the int8 variant's test score (SST-2: ``test_accuracy_int8``);
- :data:`COST`: the fp32 model's size on disk (MB) and its timings, each also + :data:`INT8`;
- :data:`THREADS`: the CPU threads every figure was measured with.
"""

INT8 = "_int8"  # the suffix of every int8 figure: test_accuracy_int8, size_mb_int8, ...
SIZE = "size_mb"
LATENCY_P50 = "latency_ms_p50"  # the median forward pass of one sentence: what a user waits for
TIMINGS = (LATENCY_P50, "latency_ms_p95", "throughput_b32")
COST = (SIZE, *TIMINGS)  # ``trainers.models.cost.Cost.metrics``' names
THREADS = "cost_threads"
LOGGED = (*COST, *(name + INT8 for name in COST), THREADS)  # every cost metric a finished run logs
# The figures that are timings: they differ between two runs of one trial, which every other final
# metric does not (a determinism check compares a run's final metrics without them).
TIMED = tuple(f"{name}{suffix}" for name in TIMINGS for suffix in ("", INT8))
