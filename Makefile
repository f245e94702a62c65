# Two entry points, each self-installing into .venv on first use (pinned by constraints.txt):
#   make sweep   install, then run the default sweep (local Ray, MLflow in results/)
#   make test    install (the Debian packages the tests drive too), then run the test suite
# and, for the inner loop, `make test-fast`: every test that starts no Ray, server or browser.
VENV ?= .venv
# The offline data folder (docs/data.md): ../shared/data where it exists beside the checkout, unless
# METADISTIL_DATA is set already (set and empty: GLUE from the Hugging Face hub). Absolute, so
# that a command run from another folder, Ray's workers included, reads the same folder.
METADISTIL_DATA ?= $(realpath ../shared/data)
export METADISTIL_DATA
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: sweep test test-fast report install

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

sweep: $(STAMP)
	$(BIN)/python -m orchestrator.sweep $(ARGS)

report: $(STAMP)
	$(BIN)/python -m orchestrator.report $(ARGS)

test: $(STAMP)
	bash tests/system/packages.sh
	$(BIN)/ruff check --quiet .
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/python -m pytest -q -m 'not system' $(ARGS)
