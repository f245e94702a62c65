"""A Ctrl-C that lands in a weakref callback is dropped by Python; the sweep's handler repeats it
until the main loop catches it, and keeps Python's "Exception ignored" traceback off the screen
(orchestrator/run/interrupts.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = """
import contextlib, os, signal, sys, time, weakref
from orchestrator.run import interrupts

class Thing:
    pass

finished = []

def slow_callback(ref):  # like SQLAlchemy's registry cleanup during garbage collection
    # The Ctrl-C is sent from inside the callback, so it lands there however loaded the machine is
    # (a timer thread could miss the callback): Python runs the handler at the next bytecode.
    os.kill(os.getpid(), signal.SIGINT)
    end = time.time() + 1.0
    while time.time() < end:
        pass
    finished.append(True)

handling = interrupts.landing() if sys.argv[1] == "landing" else contextlib.nullcontext(lambda: None)
with handling as caught:
    thing = Thing()
    ref = weakref.ref(thing, slow_callback)
    try:
        del thing  # the callback runs now, in the main thread: the first SIGINT lands in it
        end = time.time() + 5
        while time.time() < end:
            time.sleep(0.05)
        print("ran on")
    except KeyboardInterrupt:
        caught()
        print("caught")
print("callback finished" if finished else "callback interrupted")
"""


@pytest.mark.parametrize("handling, printed, traceback", [("landing", "caught", False),
                                                         ("python", "ran on", True)])
def test_a_dropped_ctrl_c_is_repeated_until_caught_and_not_printed(handling, printed, traceback):
    done = subprocess.run([sys.executable, "-c", SCRIPT, handling], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.splitlines() == [printed, "callback interrupted"], done.stderr  # the first was dropped
    assert ("Traceback" in done.stderr) is traceback, done.stderr
