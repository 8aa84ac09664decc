"""A temporary trace store with a fixed clock for the trace store's unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tracestore_helpers import NOW_NS

from alice.tracestore.store import TraceStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    with TraceStore(tmp_path / "traces.db", max_spans=1000, max_age_s=3600, clock_ns=lambda: NOW_NS) as opened:
        yield opened
