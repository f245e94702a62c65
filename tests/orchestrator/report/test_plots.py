"""The report's plots from small hand-built tables: a PNG at the path asked for (its folder made),
of the size its content calls for: taller with more points to key, a panel per method, one
figure per searched value whether the values are numbers or names, drawn by the task's main
validation metric (MRPC's F1)."""

from __future__ import annotations

import math
import struct
from dataclasses import replace

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.axes import Axes

from orchestrator.report.metrics import TaskMetrics
from orchestrator.report.plots import plot_search, plot_val_per_epoch, plot_vs_params
from orchestrator.report.reader import GroupKey, SweepData, TrialRun
from orchestrator.report.search import Objective, rank
from orchestrator.report.stats import Summary
from orchestrator.report.tables import Cells, Row
from tests.orchestrator.report.store import PNG_MAGIC
from tests.orchestrator.report.test_search_section import mrpc_runs

SST2 = TaskMetrics("sst2", "SST-2")

KD_BLUE = (31, 119, 180)  # matplotlib's tab:blue, KD's colour
KEYS = [GroupKey("finetune", (), "distilbert"), GroupKey("kd", ("bert",), "distilbert"),
        GroupKey("metadistil", ("bert",), "distilbert"), GroupKey("metadistil", ("bert",), "distilbert",
                                                                  meta_every=4),
        GroupKey("finetune", (), "bert")]


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def _rows(n: int, *, missing: int = 0) -> list[tuple[Row, Cells]]:
    rows = []
    for i in range(n + missing):
        key = KEYS[i % len(KEYS)]
        summary = Summary(90 - i / 3, 0.4 if i % 2 else math.nan, 1 + i % 2) if i < n else None
        params = 110_000_000 if key.student == "bert" else 67_000_000
        rows.append((Row(f"row {i}", key, ()), Cells(summary, None, False, params, None, None)))
    return rows


def test_accuracy_against_parameters_grows_with_the_points_it_keys(tmp_path):
    plot_vs_params(_rows(5), tmp_path / "plots" / "few.png", SST2)
    plot_vs_params(_rows(40, missing=10), tmp_path / "plots" / "many.png", SST2)  # 10 not run
    assert _png_size(tmp_path / "plots" / "few.png") == (1650, 675)  # 11 × 4.5 in at 150 dpi
    assert _png_size(tmp_path / "plots" / "many.png") == (1650, round(150 * (1.2 + 0.22 * 40)))


def test_validation_accuracy_has_a_panel_per_method(tmp_path):
    histories = {Row(f"row {i}", key, ()): {1: [60.0, 62.0], 2: [70.0, 71.0], 3: [75.0]}
                 for i, key in enumerate(KEYS)}
    plot_val_per_epoch(histories, tmp_path / "val.png", SST2)
    # Fine-tune, KD, MetaDistil and MetaDistil (every 4th batch): four panels of 5 in
    assert _png_size(tmp_path / "val.png") == (4 * 5 * 150, 675)
    plot_val_per_epoch({}, tmp_path / "none.png", SST2)
    assert _png_size(tmp_path / "none.png") == (750, 675)


SAMPLES = [(1e-5, "kl"), (3e-4, "mse"), (1e-3, "kl")]  # (lr, soft_loss) of samples 0, 1, 2


def _ranking():
    """KD's three samples over two seeds; sample 2's seed 1 stopped early."""
    runs = [TrialRun(f"r{sample}{seed}", "", KEYS[1], seed, 80.0, 1, 2, "tiny", f"t{sample}{seed}", 0,
                     sample=sample, searched=(("lr", lr), ("soft_loss", loss)),
                     last=(("val_accuracy", 0.7 + sample / 100),))
            for sample, (lr, loss) in enumerate(SAMPLES) for seed in (0, 1)]
    stopped = replace(runs.pop(), stopped_at_epoch=1)
    return rank(SweepData("s", None, {}, None, tuple(runs), (), 0, stopped=(stopped,)), Objective())


def _kd_blue_pixels(path) -> int:
    image = (mpimg.imread(path)[..., :3] * 255).round()
    return int((np.abs(image - KD_BLUE).sum(axis=-1) < 30).sum())


@pytest.mark.parametrize("param", ["lr", "soft_loss"])
def test_a_search_plot_per_value_numbers_or_names_each_point_drawn(tmp_path, param):
    ranking = _ranking()
    parts = {"all": ranking, "finished": replace(ranking, stopped=()), "stopped": replace(ranking, ranked={}),
             "other": ranking}
    blue = {}
    for name, part in parts.items():
        path = tmp_path / f"{name}.png"
        plot_search(part, param if name != "other" else "not_searched", path)
        assert _png_size(path) == (975, 675)
        blue[name] = _kd_blue_pixels(path)  # KD's points, in KD's colour (hollow: stopped early)
    assert blue["all"] > blue["finished"] > 50 and blue["all"] > blue["stopped"] > 20 and blue["other"] == 0


def test_an_mrpc_search_plot_draws_validation_f1(tmp_path, monkeypatch):
    drawn, labels = [], []
    plot, set_ylabel = Axes.plot, Axes.set_ylabel
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **k: drawn.append(a[1]) or plot(self, *a, **k))
    monkeypatch.setattr(Axes, "set_ylabel",
                        lambda self, text, **k: labels.append(text) or set_ylabel(self, text, **k))
    ranking = rank(SweepData("s", None, {}, None, tuple(mrpc_runs()), (), 0), Objective())
    plot_search(ranking, "lr", tmp_path / "lr.png")
    assert sorted(drawn) == pytest.approx([71.0, 86.0])  # each sample's mean val_f1, not its accuracy
    assert labels == ["Validation F1, last epoch (%)"] and _png_size(tmp_path / "lr.png") == (975, 675)
