"""Shared test settings: the real SST-2 and MRPC files from the offline data folder
(``METADISTIL_DATA``, which make sets where it can), the presets' BERT vocabulary, small thread
counts, and the one real sweep (``swept``) that several test files read."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from tests.sweeps import Sweep, run_e2e_sweep
from trainers.data.source import ENV, offline_folder
from trainers.models.build import default_vocab

ROOT = Path(__file__).resolve().parent.parent
DATA = offline_folder()
if DATA is None:  # the tests read GLUE's TSVs by path and count their rows; offline, no hub
    pytest.exit(f"the tests read GLUE's TSVs from the offline data folder: set {ENV} to a folder "
                "with sst2/ and mrpc/ (docs/data.md: where make finds one by default)",
                returncode=2)
SST2 = DATA / "sst2"
MRPC = DATA / "mrpc"
VOCAB = default_vocab()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)
# A shell without job control (a CI script, `make test &`) starts its background commands with
# SIGINT ignored, and every process the suite starts inherits that: Python then installs no
# KeyboardInterrupt handler, so the demo never stops on its Ctrl-C (test_demo.py timed out) and the
# plain-Python control case of test_interrupts.py sees no interrupt. The suite's processes take
# Ctrl-C as if started from a terminal's foreground, however the suite itself was started.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def swept(tmp_path_factory) -> Sweep:
    """The e2e sweep, run once for the whole session: the end-to-end, fault and demo tests read it."""
    return run_e2e_sweep(tmp_path_factory.mktemp("e2e"))
