"""A clone anywhere, as a user without the offline data folder has one: no ``METADISTIL_DATA``, no
folder beside it, the hub answered by a Hugging Face cache laid out as ``load_dataset("nyu-mll/glue",
"sst2")`` leaves it. The default sweep plans there, a trial of its kind trains there (SST-2 from that
cache, the tiny BERT presets' vocabulary from the installed package), and every path the run writes
by default (store, MLflow, report) is one git ignores: the clone stays clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.paths import DEFAULT_SPACE, PROJECT_ROOT
from tests.conftest import SST2
from tests.sweeps import TIMEOUT_S, kill_session, start_module

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

SPLITS = ("train", "validation", "test")


def _glue_cache(home: Path, scratch: Path) -> None:
    """``$HF_HOME/datasets/nyu-mll___glue/sst2/0.0.0/<revision>/``: what the parquet builder of
    a hub download writes (``glue-<split>.arrow``, ``dataset_info.json``), built by that builder
    from GLUE's own rows (its test labels hidden, -1, as the hub's are)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.packaged_modules.parquet.parquet import Parquet

    from trainers.data.glue import read_tsv

    files = {}
    for split in SPLITS:
        rows = read_tsv(SST2 / f"{split}.tsv")
        labels = rows.labels.tolist() if split != "test" else [-1] * len(rows)
        files[split] = str(scratch / f"{split}.parquet")
        pq.write_table(pa.table({"sentence": list(rows.sentences), "label": labels,
                                 "idx": rows.ids.tolist()}), files[split])
    features = datasets.Features({"sentence": datasets.Value("string"), "idx": datasets.Value("int32"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    Parquet(cache_dir=str(home / "datasets"), dataset_name="glue", config_name="sst2", config_id="sst2",
            hash="0" * 40, data_files=files, features=features).download_and_prepare()
    # A download names the folder by the hub id's namespace too (the builder, given no repo, does not).
    (home / "datasets" / "glue").rename(home / "datasets" / "nyu-mll___glue")


def _clone(into: Path) -> Path:
    """The checkout's files as git would clone them (tracked, and new ones not ignored), committed."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (PROJECT_ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, into / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "clone"]):
        subprocess.run([*git, *command], cwd=into, check=True, capture_output=True)
    return into


def _module(clone: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    process, ray_tmp = start_module(*args, env=env, cwd=clone)
    try:
        out, _ = process.communicate(timeout=TIMEOUT_S)
    finally:
        kill_session(process.pid, ray_tmp)
    return subprocess.CompletedProcess(process.args, process.returncode, out, "")


@pytest.fixture(scope="module")
def anywhere(tmp_path_factory):
    root = tmp_path_factory.mktemp("anywhere")
    clone = _clone(root / "clone")  # nothing beside it but the hub's cache and the space below
    (root / "scratch").mkdir()
    _glue_cache(root / "hf", root / "scratch")
    with pytest.MonkeyPatch.context() as patch:  # the commands inherit this process's environment
        patch.delenv("METADISTIL_DATA", raising=False)
        yield clone, root, {"HF_HOME": str(root / "hf")}


def test_the_default_sweep_plans_from_the_hubs_cache(anywhere):
    clone, _, env = anywhere
    assert not (clone.parent / "shared").exists() and "METADISTIL_DATA" not in os.environ
    done = _module(clone, env, "orchestrator.sweep", "--dry-run")
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"^sweep 'smoke': \d+ trials in \d+ stage\(s\)", done.stdout, re.MULTILINE)
    assert "from the hub (nyu-mll/glue sst2, cached)" in done.stdout


def test_a_trial_trains_there_and_leaves_the_clone_clean(anywhere):
    clone, root, env = anywhere
    space = yaml.safe_load(DEFAULT_SPACE.read_text())
    space.update(name="anywhere", train={**space["train"], "epochs": 1, "lr": 1.0e-3},
                 data={**space["data"], "train_size": 300, "quiz_size": 20, "test_size": 100},
                 grid=[{"methods": ["finetune"], "students": ["distilbert"]}])  # a BERT vocabulary
    space.pop("per_model")
    (root / "space.yaml").write_text(yaml.safe_dump(space))
    done = _module(clone, env, "orchestrator.sweep", "--space", str(root / "space.yaml"))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 trials: 1 trained, 0 reused, 0 failed" in done.stdout
    assert (clone / "results" / "store" / "reports" / "anywhere" / "README.md").is_file()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status
