"""LLM_FAULT_DELAY_FILE: the injected delay follows the file while the service runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_svc.fault import FaultDelay


def _write(path: Path, text: str, bump_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump_ns))  # a change within one clock tick too


def test_fixed_delay_without_a_file() -> None:
    assert FaultDelay(250).current_ms() == 250
    assert FaultDelay().current_ms() == 0


def test_file_turns_the_delay_on_and_off(tmp_path: Path) -> None:
    path = tmp_path / "delay-ms"
    delay = FaultDelay(999, path)  # LLM_FAULT_DELAY_MS until the file exists
    assert delay.current_ms() == 999
    _write(path, "3000\n", 1)
    assert delay.current_ms() == 3000
    _write(path, "0", 2)
    assert delay.current_ms() == 0
    path.unlink()
    assert delay.current_ms() == 999


@pytest.mark.parametrize("content", ["slow", "-5", "600001"])
def test_a_bad_file_means_no_delay(tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "delay-ms"
    path.write_text(content, encoding="utf-8")
    assert FaultDelay(0, path).current_ms() == 0
    assert "no delay" in caplog.text
