"""Safety defaults: no code runs from a model folder, and the Ray the sweep starts is not open.

(YAML is loaded safely: tests/test_bad_input.py; no secret logged as a param and no pickle in a
checkpoint: tests/test_runs.py and tests/test_loops.py.)
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, VOCAB
from tests.sweeps import kill_session
from trainers.models import ModelError, build_model


class _WritesMarker:
    """Unpickling this writes a file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def _model_folder(folder: Path, **config_extra) -> Path:
    folder.mkdir()
    config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "vocab_size": 30522,
              "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
              **config_extra}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text(VOCAB.read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    return folder


def test_pickled_weights_are_refused_unopened(tmp_path):
    folder = _model_folder(tmp_path / "model")
    marker = tmp_path / "marker"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(ModelError, match="cannot load directory"):
        build_model(str(folder), "tiny", train_texts=(), cache_dir=tmp_path)
    assert not marker.exists()


def test_remote_code_in_a_model_folder_never_runs(tmp_path):
    marker = tmp_path / "marker"
    folder = _model_folder(tmp_path / "model", auto_map={
        "AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel"})
    (folder / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    with pytest.raises(ModelError):
        build_model(str(folder), "tiny", train_texts=(), cache_dir=tmp_path)
    assert not marker.exists()


PROBE = """
import json, os, subprocess, sys, urllib.error, urllib.request
from orchestrator.local_ray import start_ray
context = start_ray()
host, port = context.dashboard_url.rsplit(":", 1)
listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
try:
    urllib.request.urlopen(f"http://{context.dashboard_url}/api/version", timeout=30)
    anonymous = 200
except urllib.error.HTTPError as error:
    anonymous = error.code
intruder = subprocess.run(
    [sys.executable, "-c", f"import ray; ray.init(address={context.address_info['gcs_address']!r})"],
    env={**os.environ, "RAY_AUTH_TOKEN": "not-the-token"}, capture_output=True, text=True, timeout=180)
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
