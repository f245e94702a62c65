"""Write a file or a folder so that readers see all of it or none of it.

Concurrent trials share caches, and a finished trial's folder marks it done, so nothing may ever
be seen half written: everything is written to a staging name beside the target (the same file
system, so the final rename is atomic) and renamed into place only once complete.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(target: Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield a fresh staging path beside ``target``; on a clean exit it becomes ``target``.

    The staging name is ``<stem>.tmp-<pid>-<ns><suffix>``: it keeps ``target``'s suffix
    (``numpy.savez`` would append ``.npz`` otherwise) and says what it is to whoever finds one
    left by a killed process.
    ``replace=False`` is for caches whose content is a function of their name: if another process
    put ``target`` in place first, its copy is as good and ours is dropped. An error inside the
    block removes the staging path and leaves ``target`` as it was.
    """
    staging = target.with_name(f"{target.stem}.tmp-{os.getpid()}-{time.time_ns()}{target.suffix}")
    try:
        yield staging
        if target.exists() and not replace:
            return
        if target.is_dir() and staging.is_dir():  # a folder cannot be renamed over a full one
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
