"""The MLflow UI as a researcher opens it on a finished sweep: ``mlflow server`` on the e2e sweep's
store, and docs/mlflow.md's runs view in headless Chromium. MLflow 3.17 opens an experiment on its
GenAI overview unless the URL asks for model training (``workflowType=machine_learning``), so the
page's URL does: it lands on the runs, lists every trial run, and a run's page shows its
validation accuracy. The screenshot is ``test-artifacts/mlflow-ui.png``."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from mlflow.tracking import MlflowClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import headless_chromium
from tests.conftest import ROOT
from tests.servers import mlflow_server
from tests.sweeps import Sweep

pytestmark = pytest.mark.system  # starts a server and a browser: `make test-fast` skips it

PAGE_TIMEOUT_S = 120  # the UI's scripts load and query the server on a busy 2-core machine
SCREENSHOT = ROOT / "test-artifacts" / "mlflow-ui.png"
TRIAL_RUNS = "tags.trial_key != ''"  # docs/mlflow.md's view: trial runs only, best first
VIEW = (f"workflowType=machine_learning&searchFilter={quote(TRIAL_RUNS)}"
        f"&orderByKey={quote('metrics.`val_accuracy`')}&orderByAsc=false")


def _text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_the_readmes_runs_view_lists_every_trial_and_a_run_shows_its_accuracy(swept: Sweep, tmp_path):
    client = MlflowClient(swept.tracking_uri)
    experiment = client.get_experiment_by_name("e2e").experiment_id
    trials = client.search_runs([experiment], TRIAL_RUNS)
    names = [run.info.run_name for run in trials]
    with mlflow_server(tmp_path / "ui", swept.tracking_uri) as server, \
            headless_chromium(tmp_path / "chromium", size="1600,900") as browser:
        server.wait_ready("/health")
        browser.get(f"{server.url}/#/experiments/{experiment}/runs?{VIEW}")
        WebDriverWait(browser, PAGE_TIMEOUT_S).until(lambda d: all(n in _text(d) for n in names))
        assert "/runs" in browser.current_url and "workflowType=machine_learning" in browser.current_url
        assert f"{len(names)} matching runs" in _text(browser)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))

        run = trials[0]
        browser.get(f"{server.url}/#/experiments/{experiment}/runs/{run.info.run_id}")
        WebDriverWait(browser, PAGE_TIMEOUT_S).until(lambda d: "val_accuracy" in _text(d))
        shown = _text(browser)
    value = run.data.metrics["val_accuracy"]
    assert run.info.run_name in shown
    assert any(f"{value:.{d}f}" in shown for d in (2, 3, 4)), (value, shown[:2000])
