"""Where a task's data come from when a space does not say: the offline folder, or the hub.

``METADISTIL_DATA`` names an offline data folder holding one subfolder per task (``sst2/``,
``mrpc/``: GLUE's TSVs, ``trainers/data/glue.py``), for machines without the Hugging Face hub; the
Makefile may give it a default (docs/data.md says which) when the variable is unset. A
space's explicit ``data.source`` (a folder, or ``hub``) wins over it; with neither, or a folder
without the task's subfolder (it holds the tasks someone copied there, not all of GLUE), the task
is GLUE's from the hub through ``datasets``, kept in the usual Hugging Face cache.

The variable is read when a space is read, on the driver, so the workers receive an absolute folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainers.errors import UserError

ENV = "METADISTIL_DATA"
HUB = "hub"


class OfflineDataError(UserError):
    """``METADISTIL_DATA`` names no usable folder; the message names the variable, value and fix."""


def offline_folder() -> Path | None:
    """The folder ``METADISTIL_DATA`` names (relative to the current directory), or ``None``
    where it is unset or empty (``METADISTIL_DATA=`` asks for the hub even where make would not)."""
    value = os.environ.get(ENV, "")
    return Path(value).expanduser().resolve() if value else None


def default_source(task: str) -> str:
    """``data.source`` of a space that names none: ``$METADISTIL_DATA/<task>`` where it is a
    folder, else ``hub``. A variable naming no folder is a mistake, said in one line."""
    folder = offline_folder()
    if folder is None:
        return HUB
    if not folder.is_dir():
        raise OfflineDataError(f"{ENV}={os.environ[ENV]}: no such folder; point it at a folder with "
                               f"one subfolder per task ({task}/ among them), or unset it to load "
                               "GLUE from the Hugging Face hub")
    return str(folder / task) if (folder / task).is_dir() else HUB
