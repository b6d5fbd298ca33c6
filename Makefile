# The two commands of the README: `make up` runs urne, `make test` runs every test.
# Both create the virtualenv from pyproject.toml on first use.

VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# Caches and bytecode live outside the checkout: a test run leaves the tree as it was.
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/urne
export PYTHONPYCACHEPREFIX := $(CACHE)/pycache
export MYPY_CACHE_DIR := $(CACHE)/mypy
export RUFF_CACHE_DIR := $(CACHE)/ruff
PYTEST := $(BIN)/python -m pytest -o cache_dir=$(CACHE)/pytest

.PHONY: up test install lint bench clean-state messages screenshots

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## Run urne in one process (embedded profile, no server needed) on http://127.0.0.1:8000
up: install
	$(BIN)/urne up

## Start RabbitMQ and Cassandra (installing them when missing), install the static checks'
## tools (promtool; kustomize and kubeconform) and the browser tests' (Chromium,
## axe-core), lint, type-check, run every test (the
## nameko adapter tests run green-threaded, in a pytest process of their own)
test: install
	infra/rabbitmq/start.sh
	infra/cassandra/start.sh
	infra/prometheus/install-promtool.sh
	infra/tools/install.sh
	infra/browser/install.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(PYTEST)
	$(PYTEST) -p tests.support.green tests/nameko

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## Refresh the web pages' catalogues (gateway/web/locales) from the messages marked in
## their templates and code; then translate the new French entries (msgstr "")
messages: install
	$(BIN)/pybabel extract -F gateway/web/babel.cfg --no-location --sort-output --omit-header \
		-o $(CACHE)/messages.pot gateway/web
	$(BIN)/pybabel update -i $(CACHE)/messages.pot -d gateway/web/locales --no-fuzzy-matching --ignore-obsolete \
		--omit-header --width 88

## Refresh docs/screenshots/ (the README's pictures): each main page, phone and desktop
screenshots: install
	infra/browser/install.sh
	URNE_SCREENSHOTS_DIR=docs/screenshots $(PYTEST) -q tests/web/test_screenshots.py

## Ballot-path benchmark (prints JSON)
bench: install
	$(BIN)/python -m loadtests.ballots
