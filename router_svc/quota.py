"""Cap on the share of micro-LLM route decisions over a sliding window of decisions."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["MICRO", "MicroQuota", "QuotaSnapshot"]

MICRO = "micro"


@dataclass(frozen=True)
class QuotaSnapshot:
    """Point-in-time view of the quota."""

    max_share: float
    window: int
    decisions: int
    micro: int
    share: float
    admitted: int
    rejected: int


class MicroQuota:
    """Keeps micro decisions at most max_share of the last `window` decisions.

    Every method is synchronous and never awaits, so under asyncio each call is atomic:
    there is no lock to forget or to deadlock on. Not for use from several threads.

    The share is over the decisions actually in the window, so a cold quota is strict:
    with max_share 0.3 the first micro decision is admitted after three others. A
    rejected caller takes another route and must record() it; that is what lets micro
    decisions back in.
    """

    def __init__(self, max_share: float, window: int = 100) -> None:
        if not 0.0 <= max_share <= 1.0:
            raise ValueError(f"max_share must be in [0, 1], got {max_share}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._max_share = max_share
        self._window = window
        self._decisions: deque[bool] = deque(maxlen=window)
        self._micro = 0
        self._admitted = 0
        self._rejected = 0

    def admit_micro(self) -> bool:
        """Record a micro decision and return True if the share stays within the cap."""
        full = len(self._decisions) == self._window
        evicted_micro = full and self._decisions[0]
        micro_after = self._micro + 1 - evicted_micro
        decisions_after = len(self._decisions) + (not full)
        if micro_after / decisions_after > self._max_share:
            self._rejected += 1
            return False
        self._push(True)
        self._admitted += 1
        return True

    def record(self, route: str) -> None:
        """Record a decision for any route but micro (fast, planner, cache, ...)."""
        if route == MICRO:
            # Recording micro here would bypass the cap.
            raise ValueError("micro decisions must go through admit_micro()")
        self._push(False)

    def share(self) -> float:
        """Share of micro decisions among those in the window (0.0 when empty)."""
        return self._micro / len(self._decisions) if self._decisions else 0.0

    def snapshot(self) -> QuotaSnapshot:
        return QuotaSnapshot(
            max_share=self._max_share,
            window=self._window,
            decisions=len(self._decisions),
            micro=self._micro,
            share=self.share(),
            admitted=self._admitted,
            rejected=self._rejected,
        )

    def _push(self, is_micro: bool) -> None:
        if len(self._decisions) == self._window:
            self._micro -= self._decisions[0]
        self._decisions.append(is_micro)
        self._micro += is_micro
