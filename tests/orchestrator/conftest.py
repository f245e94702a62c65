"""Fixtures of the orchestrator's page tests: one headless Chromium per test module (the demo's
pages, SST-2's and a pair task's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.browser import headless_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    with headless_chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver
