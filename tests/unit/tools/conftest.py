"""Fixtures for tool unit tests."""

from __future__ import annotations

import pytest
from tool_helpers import make_ctx

from router_svc.tools.base import ToolContext


@pytest.fixture
def ctx() -> ToolContext:
    """A context at the spec's reference time whose Redis must never be touched."""
    return make_ctx()
