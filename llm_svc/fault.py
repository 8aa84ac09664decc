"""Injected latency for fault tests: every model call waits this long first (`alice bench --fault llm-slow`).

Two sources: LLM_FAULT_DELAY_MS, fixed for the life of the process, and LLM_FAULT_DELAY_FILE, a file holding a
number of milliseconds that, while it exists, overrides it and is read again whenever it changes, so a running
service turns slow and back without a restart (a restart would also reload the models: about a minute without
an LLM on this machine). Unset in production; the check costs one stat() per model call.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

MAX_DELAY_MS = 600_000


class FaultDelay:
    """The delay to add now, in ms: the file's number while the configured file exists, else the fixed one."""

    def __init__(self, fixed_ms: int = 0, path: Path | None = None) -> None:
        self._fixed_ms = fixed_ms
        self._path = path
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the content read last
        self._file_ms = 0

    def current_ms(self) -> int:
        if self._path is None:
            return self._fixed_ms
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            self._seen = None
            return self._fixed_ms
        key = (stat.st_mtime_ns, stat.st_size)
        if key != self._seen:
            self._seen = key
            self._file_ms = self._read()
        return self._file_ms

    def _read(self) -> int:
        assert self._path is not None
        raw = self._path.read_text(encoding="utf-8").strip()
        try:
            value = int(raw or "0")
        except ValueError:
            log.warning("LLM_FAULT_DELAY_FILE %s holds %r, not a number of ms; no delay", self._path, raw[:40])
            return 0
        if not 0 <= value <= MAX_DELAY_MS:
            log.warning("LLM_FAULT_DELAY_FILE %s: %d ms is outside 0..%d; no delay", self._path, value, MAX_DELAY_MS)
            return 0
        log.warning("fault injection: every model call now waits %d ms first", value)
        return value
