"""The demo as a user meets it: ``python -m orchestrator.demo`` serving the e2e sweep's models
through real Ray Serve, driven in headless Chromium; and its bad input, refused before Ray starts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from mlflow.tracking import MlflowClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from orchestrator import demo
from tests.browser import headless_chromium
from tests.conftest import ROOT
from tests.servers import free_ports, wait_for
from tests.sweeps import Sweep, kill_session, read_output, start_module

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

# In the table's order: the teachers first, then by name.
MODELS = ("BERT (teacher)", "MetaDistil BERT→TinyBERT + noise p=0.1 + warm start (1 epoch)",
          "TinyBERT (fine-tuned)")
# Ray, Serve's controller and proxy, and a replica that loads three models, on 2 busy cores.
START_TIMEOUT_S = 180
ANSWER_TIMEOUT_S = 60
STOP_TIMEOUT_S = 180  # Ray and Serve shut down in ~10 s alone; a loaded 2-core CI machine was seen past 60
SCREENSHOT = ROOT / "test-artifacts" / "demo.png"


@dataclass
class RunningDemo:
    """The demo's process, its page's address, Ray's temp dir and everything it printed so far."""

    process: subprocess.Popen
    url: str
    ray_tmp: str
    output: list[str]  # grows as the demo prints

    def printed(self) -> str:
        return "".join(self.output)


def ray_processes(running: RunningDemo, grace_s: float = 20.0) -> list[str]:
    """What is left of the demo's session (Ray's renamed workers included) after ``grace_s``:
    Ray's workers exit on their own a few seconds after the node they belong to."""
    deadline = time.monotonic() + grace_s
    while True:
        left = [pid for query in (["-s", str(running.process.pid)], ["-f", running.ray_tmp])
                for pid in subprocess.run(["pgrep", *query], capture_output=True, text=True).stdout.split()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def start_demo(sweep: Sweep) -> RunningDemo:
    """``python -m orchestrator.demo`` in its own session and Ray temp dir; returns once it prints
    the page's address (or fails the test with what it printed)."""
    (port,) = free_ports(1)
    process, ray_tmp = start_module("orchestrator.demo", "--sweep", "e2e",
                                    "--tracking-uri", sweep.tracking_uri, "--port", str(port))
    _, output = read_output(process)
    running = RunningDemo(process, f"http://127.0.0.1:{port}/", ray_tmp, output)
    try:
        wait_for(lambda: f"open {running.url}" in running.printed(), "the demo", START_TIMEOUT_S,
                 alive=lambda: process.poll() is None)
    except RuntimeError:
        stop_demo(running)
        pytest.fail(f"the demo did not start:\n{running.printed()[-4000:]}")
    return running


def stop_demo(running: RunningDemo) -> None:
    """Whatever is left of the demo and its Ray: everything in its session."""
    kill_session(running.process.pid, running.ray_tmp)
    running.process.wait()


@pytest.fixture(scope="module")
def served(swept: Sweep) -> Iterator[RunningDemo]:
    running = start_demo(swept)
    yield running
    stop_demo(running)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    with headless_chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def ask(browser: webdriver.Chrome, text: str, typed: bool = True) -> None:
    """Put ``text`` in the box (typed, or set at once when it is long) and press the button."""
    box = browser.find_element(By.ID, "text")
    box.clear()
    if typed:
        box.send_keys(text)
    else:
        browser.execute_script("arguments[0].value = arguments[1];", box, text)
    browser.find_element(By.XPATH, "//button[normalize-space()='Predict sentiment']").click()


def answered_rows(browser: webdriver.Chrome) -> list[list[str]]:
    """The table's rows once the answer is in (the button is enabled again, one row per model)."""
    def done(driver: webdriver.Chrome) -> bool:
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        return driver.find_element(By.ID, "predict").is_enabled() and len(rows) == len(MODELS)

    WebDriverWait(browser, ANSWER_TIMEOUT_S).until(done)
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}predict", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_page_shows_every_models_answer(served, browser):
    browser.get(served.url)
    browser.find_element(By.XPATH, "//label[normalize-space()='Enter text']")
    assert "e2e" in browser.title
    ask(browser, "NLP is fun, and this film is a delight.")
    rows = answered_rows(browser)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    assert [row[0] for row in rows] == list(MODELS)
    for model, prediction, confidence, parameters, latency in rows:
        assert prediction in ("positive", "negative"), model
        assert re.fullmatch(r"\d+\.\d%", confidence) and 50.0 <= float(confidence[:-1]) <= 100.0
        assert re.fullmatch(r"\d{1,3}(,\d{3})+", parameters)
        assert re.fullmatch(r"\d+\.\d ms", latency)
    assert browser.find_element(By.ID, "note").text == ""
    assert SCREENSHOT.stat().st_size > 10_000


def test_the_page_listens_on_loopback_only(served):
    port = served.url.rstrip("/").rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    addresses = [line.split()[3] for line in listening.splitlines()]
    assert addresses and all(address.startswith("127.0.0.1:") for address in addresses), addresses


def test_empty_text_is_refused_in_the_page_without_asking_the_models(served, browser):
    browser.get(served.url)
    # Count the page's requests: an empty text must not reach the server.
    browser.execute_script("window.requests = 0; const send = window.fetch;"
                           "window.fetch = (...args) => { window.requests += 1; return send(...args); };")
    ask(browser, "   ")
    assert browser.find_element(By.ID, "message").text == demo.EMPTY_TEXT
    assert browser.execute_script("return window.requests;") == 0
    assert browser.find_elements(By.CSS_SELECTOR, "#results tbody tr") == []


def test_a_long_text_is_truncated_and_the_page_says_so(served, browser):
    browser.get(served.url)
    ask(browser, "a wonderful film " * 400, typed=False)  # 1,200 words: past every model's 512 tokens
    rows = answered_rows(browser)
    assert all(row[1] in ("positive", "negative") for row in rows)
    note = browser.find_element(By.ID, "note").text
    assert note.startswith("The text is longer than a model takes, so it was truncated")
    assert "every model read only the first 512 tokens" in note


def test_the_server_refuses_empty_and_oversized_text(served):
    status, body = post(served.url, {"text": " \n\t "})
    assert (status, body) == (400, {"error": demo.EMPTY_TEXT})
    status, body = post(served.url, {"text": "x" * (demo.MAX_TEXT_CHARS + 1)})
    assert status == 400 and "at most 20,000" in body["error"]
    status, body = post(served.url, {"text": "NLP is fun."})
    assert status == 200 and [a["model"] for a in body["answers"]] == list(MODELS)


def test_ctrl_c_stops_serve_and_ray(served):
    """Last of the module: the demo stops on SIGINT, sent as a terminal sends Ctrl-C."""
    os.killpg(served.process.pid, signal.SIGINT)
    assert served.process.wait(timeout=STOP_TIMEOUT_S) == 0, served.printed()[-4000:]
    printed = served.printed()
    assert "stopping the demo" in printed and printed.rstrip().endswith("stopped")
    assert "Traceback" not in printed
    assert ray_processes(served) == [], "Ray processes outlived the demo"


# ------------------------------------------------------------------------ bad input, no Ray


@pytest.fixture
def no_ray(monkeypatch):
    """Bad input must be refused before Ray starts: starting it fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(demo, "serve_demo", refuse)


def refused(capsys, *args: str) -> str:
    """Run the demo's CLI on bad input: exit code 2 and one line on stderr, which is returned."""
    capsys.readouterr()  # not what setting up the stores printed
    assert demo.main(["--port", str(free_ports(1)[0]), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_an_unknown_sweep_is_refused(swept, no_ray, capsys):
    err = refused(capsys, "--sweep", "nope", "--tracking-uri", swept.tracking_uri)
    assert "unknown sweep 'nope'" in err and "e2e" in err


def test_a_missing_store_names_the_sweep_command(tmp_path, no_ray, capsys):
    err = refused(capsys, "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}")
    assert "python -m orchestrator.sweep" in err


def test_a_sweep_without_finished_runs_names_the_sweep_command(tmp_path, no_ray, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("empty", artifact_location=str(tmp_path / "artifacts"))
    client.set_terminated(client.create_run(experiment, tags={"method": "finetune"}).info.run_id, "FAILED")
    err = refused(capsys, "--sweep", "empty", "--tracking-uri", uri)
    assert "python -m orchestrator.sweep --name empty" in err


def test_a_missing_model_artifact_names_the_run_and_the_file(tmp_path, no_ray, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("broken", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment, run_name="tinybert__finetune__seed0",
                            tags={"method": "finetune", "student": "tinybert", "seed": "0"})
    client.log_metric(run.info.run_id, "test_accuracy", 0.5)
    client.set_terminated(run.info.run_id, "FINISHED")
    err = refused(capsys, "--sweep", "broken", "--tracking-uri", uri)
    assert run.info.run_id in err and "tinybert__finetune__seed0" in err and "'model/'" in err


def test_a_busy_port_is_refused(tmp_path, no_ray, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = refused(capsys, "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}", "--port", str(port))
    assert f"cannot serve on 127.0.0.1:{port}" in err
