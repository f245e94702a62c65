"""The stage loop's pure parts: how many trials run side by side, and a failure in one line."""

from __future__ import annotations

import pytest

from orchestrator.spec import parse_spec
from orchestrator.stages import concurrency, error_line, trial_resources

SPACE = {"name": "t", "seeds": [0], "grid": [{"methods": ["finetune"], "students": ["tinybert"]}]}


def _spec(**resources):
    return parse_spec({**SPACE, "resources": resources}, "space.yaml")


@pytest.mark.parametrize("resources, cluster, cap, slots", [
    ({}, {"CPU": 2}, None, 2),
    ({"cpus_per_worker": 2}, {"CPU": 2}, None, 1),
    ({"workers_per_trial": 2}, {"CPU": 16}, None, 8),
    ({"max_concurrent": 3}, {"CPU": 16}, None, 3),
    ({}, {"CPU": 16}, 4, 4),
    ({"gpus_per_worker": 1}, {"CPU": 16, "GPU": 2}, None, 2),
    ({"gpus_per_worker": 0.5}, {"CPU": 16, "GPU": 1}, None, 2),
    ({"cpus_per_worker": 4}, {"CPU": 2}, None, 1),  # never 0: Tune needs one slot to run at all
])
def test_concurrency_is_what_the_cluster_fits_under_every_cap(resources, cluster, cap, slots):
    assert concurrency(_spec(**resources), cluster, cap) == slots


def test_the_searchs_max_concurrent_is_one_more_cap():
    search = {"algorithm": "random", "num_samples": 4, "max_concurrent": 2}
    spec = parse_spec({**SPACE, "train": {"lr": {"loguniform": [1e-5, 1e-3]}}, "search": search,
                       "resources": {"max_concurrent": 3}}, "space.yaml")
    assert concurrency(spec, {"CPU": 16}, None) == 2 and concurrency(spec, {"CPU": 16}, 1) == 1


def test_the_payloads_resources_are_the_spaces():
    res = trial_resources(_spec(workers_per_trial=2, cpus_per_worker=3.5, max_failures=0))
    assert (res.workers, res.cpus_per_worker, res.gpus_per_worker, res.max_failures) == (2, 3.5, 0.0, 0)
    assert res.threads == 3


def test_a_workers_error_is_one_line_without_the_traceback():
    wrapped = RuntimeError("\x1b[36mray::_RayTrainWorker__execute()\x1b[39m\n"
                           "Traceback (most recent call last):\n"
                           '  File "trainers/loop.py", line 3, in run\n    ^^^^^\n'
                           "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert error_line(wrapped) == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert error_line(RuntimeError("")) == "RuntimeError"
    assert len(error_line(RuntimeError("x" * 1000))) == 240
