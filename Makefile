# The two commands a newcomer needs are `make demo` and `make test`; see README.md.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup demo test test-unit test-e2e lint typecheck bench stack stack-stop stack-build

setup:
	@scripts/setup-python.sh

demo: setup
	@$(PY) -m pixel_llm_otel demo

stack-build:
	@scripts/build-stack.sh

test: setup stack-build
	@$(PY) -m ruff check pixel_llm_otel tests benchmarks
	@$(PY) -m ruff format --check --quiet pixel_llm_otel tests benchmarks
	@$(PY) -m mypy
	@$(PY) -m pytest -q -ra

test-unit: setup
	@$(PY) -m pytest -q -ra -m "not e2e"

test-e2e: setup stack-build
	@$(PY) -m pytest -q -ra -m e2e

lint: setup
	@$(PY) -m ruff check pixel_llm_otel tests benchmarks
	@$(PY) -m ruff format --check pixel_llm_otel tests benchmarks

typecheck: setup
	@$(PY) -m mypy

bench: setup
	@missed=""; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || missed="$$missed $$b"; done; \
	  if [ -n "$$missed" ]; then echo "bench: a goal was missed in:$$missed"; exit 1; fi; echo "bench: every goal met"

stack: setup stack-build
	@scripts/stack.sh start

stack-stop:
	@scripts/stack.sh stop
