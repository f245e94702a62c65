"""The report's README: the command that regenerates it, and no credentials of the tracking URI (the
README is meant to be committed)."""

from __future__ import annotations

from orchestrator import paths
from orchestrator.report.reader import load_sweep
from orchestrator.report.readme import readme_text
from tests.orchestrator.report.store import Store


def test_the_readme_names_the_store_without_its_credentials(store: Store) -> None:
    data = load_sweep(store.client, "cpu_partial")
    text = readme_text(data, "https://alice:s3cret@mlflow.example:5000", [], {}, "", [], [])
    assert "s3cret" not in text and "alice" not in text
    assert ("`python -m orchestrator.report --sweep cpu_partial --tracking-uri "
            "https://mlflow.example:5000`") in text
    default = readme_text(data, paths.DEFAULT_TRACKING_URI, [], {}, "", [], [])
    assert "`python -m orchestrator.report --sweep cpu_partial`" in default
