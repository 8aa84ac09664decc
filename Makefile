# Alice mesh: the README's two commands are `make run` and `make test`.
.PHONY: setup setup-dev run up test unit lint proto proto-check buf

VENV := .venv/bin

setup:
	scripts/setup.sh

setup-dev:
	scripts/setup.sh --dev

run: setup
	$(VENV)/alice demo

up: setup
	$(VENV)/alice up

proto: setup-dev
	$(VENV)/python scripts/gen_protos.py

proto-check:
	scripts/check_protos.sh

lint:
	$(VENV)/ruff check .
	$(VENV)/buf lint
	$(VENV)/buf format --diff --exit-code

test: setup-dev
	$(MAKE) --no-print-directory proto-check lint
	$(VENV)/python -m pytest
