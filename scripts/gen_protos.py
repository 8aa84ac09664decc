"""Generate the Python code for protos/ into the `alice` package (run as `make proto`)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    plugins = Path(sys.executable).parent  # mypy-protobuf's protoc plugins: typed messages and typed stubs
    for stale in (ROOT / "alice").glob("*/v1/*_pb2*.py*"):
        stale.unlink()
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"--python_out={ROOT}",
            f"--mypy_out={ROOT}",
            f"--grpc_python_out={ROOT}",
            f"--mypy_grpc_out={ROOT}",
            *sources,
        ]
    )
    if code != 0:
        return int(code)
    for source in sources:
        package_dir = ROOT / Path(source).parent
        for folder in (package_dir, package_dir.parent):
            init = folder / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated from protos/; do not edit."""\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
