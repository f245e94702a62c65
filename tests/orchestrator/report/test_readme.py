"""The report's README: the command that regenerates it, and no credentials of the tracking URI (the
README is meant to be committed)."""

from __future__ import annotations

from orchestrator import paths
from orchestrator.report.reader import load_sweep
from orchestrator.report.readme import readme_text
from tests.orchestrator.report.store import Spec, Store, add_sweep, make_store


def test_the_readme_names_the_store_without_its_credentials(store: Store) -> None:
    data = load_sweep(store.client, "cpu_partial")
    text = readme_text(data, "https://alice:s3cret@mlflow.example:5000", [], {}, "", [], [])
    assert "s3cret" not in text and "alice" not in text
    assert ("`python -m orchestrator.report --sweep cpu_partial --tracking-uri "
            "https://mlflow.example:5000`") in text
    default = readme_text(data, paths.DEFAULT_TRACKING_URI, [], {}, "", [], [])
    assert "`python -m orchestrator.report --sweep cpu_partial`" in default


def test_the_model_size_is_named_only_where_a_preset_was_built(store: Store, tmp_path, empty_database):
    """``size`` builds the named presets (tiny or real); a sweep of pretrained models has none."""
    presets = readme_text(load_sweep(store.client, "cpu_partial"), paths.DEFAULT_TRACKING_URI,
                          [], {}, "", [], [])
    assert "; model size: tiny" in presets
    pretrained = make_store(tmp_path / "pretrained", empty_database)
    add_sweep(pretrained, "minilm_only", (Spec("finetune", (), "minilm", 5),
                                          Spec("kd", ("minilm",), "minilm@2", 9)), (0,), {})
    text = readme_text(load_sweep(pretrained.client, "minilm_only"), paths.DEFAULT_TRACKING_URI,
                       [], {}, "", [], [])
    assert "- Runs: 2 finished trial runs, seeds 0\n" in text and "model size" not in text


def test_a_store_and_report_in_the_checkout_are_named_relative_to_it(store: Store) -> None:
    """What a committed README may say: no folder of the machine that made it."""
    data = load_sweep(store.client, "cpu_partial")
    uri = f"sqlite:///{paths.RESULTS_DIR / 'other.db'}"
    text = readme_text(data, uri, [], {}, "", [], [], out_dir=paths.RESULTS_DIR / "cpu_partial")
    assert ("`python -m orchestrator.report --sweep cpu_partial --tracking-uri sqlite:///results/other.db "
            "--report-dir results/cpu_partial`") in text
    assert "- MLflow: `sqlite:///results/other.db`" in text and str(paths.PROJECT_ROOT) not in text
    default = readme_text(data, paths.DEFAULT_TRACKING_URI, [], {}, "", [], [],
                          out_dir=paths.report_dir("cpu_partial"))
    assert "`python -m orchestrator.report --sweep cpu_partial`" in default
