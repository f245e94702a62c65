"""The task metrics against scikit-learn's, and each task's metrics in GLUE's order."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from trainers.data.metrics import scores
from trainers.data.tasks import TASKS


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, 2, 200)
    predictions = np.where(generator.random(200) < 0.7, labels, 1 - labels)
    got = scores(("accuracy", "f1", "matthews"), predictions, labels, "test")
    assert got["test_accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert got["test_f1"] == pytest.approx(f1_score(labels, predictions))
    assert got["test_matthews"] == pytest.approx(matthews_corrcoef(labels, predictions))


def test_constant_predictions_score_zero_f1_and_matthews():
    labels = np.array([0, 1, 1, 0])
    got = scores(("f1", "matthews"), np.zeros(4, np.int64), labels, "val")
    assert got == {"val_f1": 0.0, "val_matthews": 0.0}


def test_each_task_leads_with_glues_main_metric():
    assert TASKS["sst2"].metrics == ("accuracy",)
    assert TASKS["mrpc"].main_metric == "f1" and TASKS["mrpc"].pair
    assert TASKS["cola"].main_metric == "matthews" and TASKS["mnli"].num_labels == 3
