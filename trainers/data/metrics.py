"""GLUE's classification metrics, from predicted and true labels.

- accuracy: the share of correct predictions;
- F1 of the positive class (label 1): ``2·TP / (2·TP + FP + FN)``, the harmonic mean of precision
  and recall (0 when the class is neither predicted nor present: no true positive to count);
- Matthews' correlation: ``(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``, the Pearson
  correlation of two binary variables, 0 when a factor is 0 (a constant prediction carries no
  information), as scikit-learn and GLUE define it.
"""

from __future__ import annotations

import math

import numpy as np


def _counts(predictions: np.ndarray, labels: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(((predictions == 1) & (labels == 1)).sum())
    tn = int(((predictions != 1) & (labels != 1)).sum())
    fp = int(((predictions == 1) & (labels != 1)).sum())
    fn = int(((predictions != 1) & (labels == 1)).sum())
    return tp, tn, fp, fn


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((predictions == labels).mean())


def f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    tp, _, fp, fn = _counts(predictions, labels)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews(predictions: np.ndarray, labels: np.ndarray) -> float:
    tp, tn, fp, fn = _counts(predictions, labels)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


SCORES = {"accuracy": accuracy, "f1": f1, "matthews": matthews}


def scores(metrics: tuple[str, ...], predictions: np.ndarray, labels: np.ndarray,
           prefix: str) -> dict[str, float]:
    """``{prefix_metric: value}`` for each of a task's metrics (``val_f1``, ``test_accuracy``)."""
    return {f"{prefix}_{name}": SCORES[name](predictions, labels) for name in metrics}
