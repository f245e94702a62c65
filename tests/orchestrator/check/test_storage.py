"""The shared-storage check's pieces, without a cluster: a node's answer to the driver's probe, and
the one-line error that names the first node that fails it (the whole check on a real three-node
cluster: tests/orchestrator/test_sweep_cluster.py)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.check.storage import FIX, answer_path, answer_probe, first_problem


def test_probe_answers(tmp_path):
    probe = tmp_path / ".shared-probe-x"
    assert answer_probe(str(probe), "x", "node1").startswith("cannot see the driver's probe file")
    probe.write_text("y")
    assert answer_probe(str(probe), "x", "node1").startswith("sees another file")
    probe.write_text("x")
    assert answer_probe(str(probe), "x", "node1") == ""
    assert answer_path(probe, "node1").read_text() == "x"


def test_first_problem_names_the_node_and_the_fix():
    nodes = {"a" * 56: "10.0.0.1", "b" * 56: "10.0.0.2"}
    assert first_problem(Path("/s"), nodes, dict.fromkeys(nodes, "")) is None
    problem = first_problem(Path("/s"), nodes,
                            {"a" * 56: "", "b" * 56: "cannot see the driver's probe file /s/p"})
    assert problem == (f"storage /s is not shared: Ray node {'b' * 12} (10.0.0.2) "
                       f"cannot see the driver's probe file /s/p; {FIX}")
