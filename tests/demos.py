"""The demo as a user starts it and uses it: ``python -m orchestrator.serve.demo`` on a finished sweep's
store, in its own session and Ray temp dir, and its page driven in headless Chromium."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.servers import free_ports, wait_for
from tests.sweeps import Sweep, kill_session, read_output, start_module

# Ray, Serve's controller and proxy, and a replica that loads three models, on 2 busy cores.
START_TIMEOUT_S = 180
ANSWER_TIMEOUT_S = 60


@dataclass
class RunningDemo:
    """The demo's process, its page's address, Ray's temp dir and everything it printed so far."""

    process: subprocess.Popen
    url: str
    ray_tmp: str
    output: list[str]  # grows as the demo prints

    def printed(self) -> str:
        return "".join(self.output)


def start_demo(sweep: Sweep, name: str) -> RunningDemo:
    """``python -m orchestrator.serve.demo --sweep name`` in its own session and Ray temp dir; returns
    once it prints the page's address (or fails the test with what it printed)."""
    (port,) = free_ports(1)
    process, ray_tmp = start_module("orchestrator.serve.demo", "--sweep", name,
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


def ask(browser: webdriver.Chrome, button: str, *texts: str, typed: bool = True) -> None:
    """Put ``texts`` in the page's boxes in order (typed, or set at once when long) and press
    ``button``."""
    for box, text in zip(browser.find_elements(By.TAG_NAME, "textarea"), texts):
        box.clear()
        if typed:
            box.send_keys(text)
        else:
            browser.execute_script("arguments[0].value = arguments[1];", box, text)
    browser.find_element(By.XPATH, f"//button[normalize-space()='{button}']").click()


def answered_rows(browser: webdriver.Chrome, models: int) -> list[list[str]]:
    """The table's rows once the answer is in (the button is enabled again, one row per model)."""
    def done(driver: webdriver.Chrome) -> bool:
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        return driver.find_element(By.ID, "predict").is_enabled() and len(rows) == models

    WebDriverWait(browser, ANSWER_TIMEOUT_S).until(done)
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]


def post(url: str, body: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    """``POST /predict`` as the page sends it (``raw``: these bytes instead of ``body`` as JSON):
    the status and the JSON body."""
    request = urllib.request.Request(f"{url}predict", data=json.dumps(body).encode() if raw is None else raw,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
