"""The Ray the sweep starts is not open: its dashboard listens on loopback and wants Ray's token.

(The other safety defaults: no code runs from a model folder, tests/trainers/models/test_build.py; YAML
is loaded safely, tests/orchestrator/check/test_preflight.py; no secret logged as a param and no pickle
in a checkpoint, tests/orchestrator/tracking/test_runs.py and tests/trainers/engine/test_loop.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import ROOT
from tests.sweeps import kill_session

PROBE = """
import json, os, subprocess, sys, urllib.error, urllib.request
from orchestrator.run.local_ray import start_ray
context = start_ray()
host, port = context.dashboard_url.rsplit(":", 1)
listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
try:
    urllib.request.urlopen(f"http://{context.dashboard_url}/api/version", timeout=30)
    anonymous = 200
except urllib.error.HTTPError as error:
    anonymous = error.code
# Refused is refused: the intruder asks 3 times, not Ray's default 20 (a second apart: 20 s).
intruder = subprocess.run(
    [sys.executable, "-c", f"import ray; ray.init(address={context.address_info['gcs_address']!r})"],
    env={**os.environ, "RAY_AUTH_TOKEN": "not-the-token", "RAY_NUM_REDIS_GET_RETRIES": "3"},
    capture_output=True, text=True, timeout=180)
print(json.dumps({"host": host, "listening": [line.split()[3] for line in listening.splitlines()],
                  "anonymous": anonymous, "intruder_rc": intruder.returncode,
                  "intruder_said": intruder.stderr[-2000:]}))
"""


@pytest.mark.system
def test_local_ray_dashboard_on_loopback_and_token_auth_on(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_AUTH_MODE": "token"}
    probe = subprocess.Popen([sys.executable, "-c", PROBE], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = probe.communicate(timeout=400)
    finally:
        kill_session(probe.pid, ray_tmp)
    assert probe.returncode == 0, err[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["host"] == "127.0.0.1"
    assert seen["listening"] and all(address.startswith("127.0.0.1:") for address in seen["listening"])
    assert seen["anonymous"] == 401  # the dashboard's API wants the token
    assert seen["intruder_rc"] != 0 and "token" in seen["intruder_said"].lower()  # refused for its token
