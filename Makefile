# DeepRec: `make serve` runs the service, `make test` runs the tests. Both are idempotent.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEEPREC := $(VENV)/bin/deeprec
DATASET ?= ml-100k
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint bench install install-dev data models clean-venv

$(PY):
	python3 -m venv $(VENV)

# Re-install only when the project's metadata changed.
$(VENV)/.installed: pyproject.toml scripts/install.sh | $(PY)
	PYTHON=$(PY) scripts/install.sh postgres --editable
	touch $@

$(VENV)/.installed-dev: pyproject.toml scripts/install.sh | $(PY)
	PYTHON=$(PY) scripts/install.sh dev --editable
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

data: install
	$(DEEPREC) data fetch $(DATASET)
	$(DEEPREC) db upgrade
	$(DEEPREC) data load $(DATASET)

# A fast first start: train only what /readyz needs (DEEPREC_REQUIRED_MODELS), serve, and let the
# server train the other default models as ordinary jobs (swapped in when ready).
models: data
	$(DEEPREC) bootstrap --required-only

serve: models
	exec $(DEEPREC) serve --host $(HOST) --port $(PORT) --train-missing

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check app ml bench tests migrations
	$(VENV)/bin/ruff format --check app ml bench tests migrations
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy app ml/inference

bench: install-dev
	$(PY) -m bench

clean-venv:
	rm -rf $(VENV)
