"""The task registry's class names: one per label, GLUE's, and what a trial's folder says it was
trained on (the names a logged model carries, so pipeline() says "equivalent", not LABEL_1)."""

from __future__ import annotations

import json

import pytest

from trainers.data.tasks import TASKS, Task, TaskError
from trainers.record.artifacts import CONFIG_ARTIFACT
from trainers.record.model_log import task_labels


def test_every_task_names_each_of_its_labels():
    for task in TASKS.values():
        assert len(task.labels) == task.num_labels and len(set(task.labels)) == task.num_labels
    assert TASKS["sst2"].labels == ("negative", "positive")
    assert TASKS["mrpc"].labels == ("not_equivalent", "equivalent")


def test_a_task_with_a_name_missing_is_refused():
    with pytest.raises(TaskError, match="2 label names, 3 labels"):
        Task("x", "X", ("sentence",), 3, ("accuracy",), "x", 1)


@pytest.mark.parametrize("task", ["sst2", "mrpc", "mnli"])
def test_a_folder_names_the_classes_of_its_task(tmp_path, task):
    (tmp_path / CONFIG_ARTIFACT).write_text(json.dumps({"data": {"task": task}}))
    assert task_labels(tmp_path) == TASKS[task].labels
