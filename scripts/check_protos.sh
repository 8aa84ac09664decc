#!/usr/bin/env bash
# Fails when the committed generated code differs from what protos/ generates, and when buf breaking finds a
# break against main.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python scripts/gen_protos.py
if ! git diff --exit-code --stat -- alice/ ; then
    echo "generated code is stale: run 'make proto' and commit the result" >&2
    exit 1
fi
if [ -n "$(git ls-files --others --exclude-standard -- 'alice/*/v1/*')" ]; then
    echo "generated files are not committed: run 'make proto' and commit them" >&2
    exit 1
fi
if git rev-parse --verify --quiet main >/dev/null; then
    .venv/bin/buf breaking --against '.git#branch=main'
fi
echo "protos: generated code fresh, no breaking changes against main"
