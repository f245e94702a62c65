"""Ctrl-C that always lands.

Python raises ``KeyboardInterrupt`` in whatever the main thread is running when SIGINT arrives.
When that is a weakref callback or a ``__del__`` (SQLAlchemy's class registry cleans up that way
during garbage collection, as MLflow's store runs), Python prints the exception and drops it, and
the sweep would run on to its end: seen once in the fault test, where a re-run interrupted as stage
2 started finished the stage and exited 0. So every Ctrl-C is repeated every half second until the
sweep has caught it, and a dropped one is not printed (``sys.unraisablehook``): the user would
see a traceback for their own Ctrl-C, and the repeat lands it half a second later anyway.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

REPEAT_S = 0.5


@contextmanager
def landing() -> Iterator[Callable[[], None]]:
    """Handle SIGINT as above inside the block, and as before after it. Yields ``caught``, to call
    first thing where the interrupt is handled: it stops the repeats and ignores further Ctrl-C
    while the sweep cleans up."""
    pending = threading.Event()

    def repeat() -> None:
        if pending.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    def on_sigint(signum, frame) -> None:
        pending.set()
        timer = threading.Timer(REPEAT_S, repeat)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    def caught() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        pending.clear()

    previous_hook = sys.unraisablehook

    def quiet_dropped_interrupt(unraisable) -> None:
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            previous_hook(unraisable)

    previous = signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = quiet_dropped_interrupt
    try:
        yield caught
    finally:
        pending.clear()
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
