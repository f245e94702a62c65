"""A local Ray node that does not come up in Ray's 30 s (an overloaded machine) is a start that
failed, said in one line by the sweep and the demo, not a traceback; any other error is Ray's."""

from __future__ import annotations

import pytest
import ray

from orchestrator.run import local_ray


def _raising(error):
    def init(**_):
        raise error
    return init


def test_a_node_that_timed_out_is_a_runtime_error_with_the_fix(monkeypatch):
    stopped = []
    monkeypatch.setattr(ray, "init", _raising(Exception(
        "The current node timed out during startup. This could happen because some of the raylet "
        "failed to startup or the GCS has become overloaded.")))
    monkeypatch.setattr(ray, "shutdown", lambda: stopped.append(True))
    with pytest.raises(RuntimeError, match="did not start within Ray's 30 s") as error:
        local_ray.start_ray()
    assert "\n" not in str(error.value) and "--address auto" in str(error.value) and stopped


def test_any_other_error_is_left_as_ray_raised_it(monkeypatch):
    monkeypatch.setattr(ray, "init", _raising(ValueError("bad argument")))
    with pytest.raises(ValueError, match="bad argument"):
        local_ray.start_ray()
