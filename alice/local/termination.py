"""SIGTERM as an exception, so a local mesh started by this process is stopped, not orphaned."""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived: unwind like KeyboardInterrupt (a BaseException, so `except Exception` lets it pass)."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def unwind_on_sigterm() -> None:
    """Make a plain SIGTERM (`timeout`, a CI runner, `kill`) raise `Terminated` in the main thread.

    Without it the process ends at once and the services a `with LocalMesh(...)` block started keep running (each
    has a process group of its own); as an exception it unwinds through that block, which stops them. A handler
    someone else installed (`alice up`, `alice trace serve`) is left alone.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
