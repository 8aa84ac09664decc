"""A SIGTERM becomes `Terminated` (so `with LocalMesh` blocks unwind), unless the process has a handler of its own."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, time
from alice.local.termination import Terminated, unwind_on_sigterm
if {own_handler}:
    signal.signal(signal.SIGTERM, lambda *_: print("own handler", flush=True))
unwind_on_sigterm()
try:
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)
        print("slept on", flush=True)
    finally:
        print("cleaned up", flush=True)
except Terminated:
    print("terminated", flush=True)
"""


def _run(own_handler: bool) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(own_handler=own_handler)], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.split("\n")[:-1]


def test_sigterm_unwinds_through_finally_blocks() -> None:
    assert _run(own_handler=False) == ["cleaned up", "terminated"]


def test_a_handler_the_process_installed_is_left_alone() -> None:
    assert _run(own_handler=True) == ["own handler", "slept on", "cleaned up"]
