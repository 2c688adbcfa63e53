# Ali: `make run` for a local demo, `make test` for the full suite. See README.md.
SHELL := /bin/bash
# A failing command in a pipe (`pybabel ... | tail`) must fail the target.
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TRANSLATIONS := core/translations
export ALI_INSTANCE_PATH ?= $(CURDIR)/instance
# `make run PORT=5001` serves on another port (ALI_PUBLIC_URL follows unless it is set).
PORT ?= 5000

.PHONY: install run test lint typecheck pytest bench messages translations browser npm contract clean

$(BIN)/ali: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/ali

install: $(BIN)/ali translations

translations: $(BIN)/ali
	$(BIN)/pybabel compile --use-fuzzy -d $(TRANSLATIONS) -D messages --statistics 2>&1 | tail -n 2

# Extract new strings and merge them into the catalogues; translate, then commit the .po.
messages: $(BIN)/ali
	$(BIN)/pybabel extract -F $(TRANSLATIONS)/babel.cfg -k _l -k lazy_gettext --no-location \
		--sort-output -o $(TRANSLATIONS)/messages.pot core intake routing oncall templates
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching --ignore-obsolete

run: install
	$(BIN)/ali db upgrade
	$(BIN)/ali demo
	@echo "Ali is at http://127.0.0.1:$(PORT) (log in with a demo user above; Ctrl-C stops)"
	ALI_PUBLIC_URL="$${ALI_PUBLIC_URL:-http://127.0.0.1:$(PORT)}" $(BIN)/ali run --port $(PORT)

# Browser tests drive Debian's chromium; install it when missing (CI and dev machines are root).
# They check every page with axe-core from npm, kept in node_modules/ (not committed).
AXE_CORE_VERSION := 4.14.1
browser: npm
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is missing: sudo apt-get install -y chromium"; exit 1; fi; }

# The contract test (tests/contract) runs Twilio's own OpenAPI description of API 2010 (from
# @twilio/cli-core) under Prism's mock server; both pinned, from npm, into node_modules/ too.
# Prism 5.14.2 is the last that runs on Node 20. A `npm install --no-save` removes what an
# earlier one added, so every package goes in one install.
PRISM_VERSION := 5.14.2
TWILIO_CLI_CORE_VERSION := 9.0.0
# iCal feeds are checked with ical.js, the parser of Mozilla's calendar clients.
ICAL_JS_VERSION := 2.2.1
npm:
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install -y nodejs npm"; exit 1; }
	@{ grep -qs '"version": "$(AXE_CORE_VERSION)"' node_modules/axe-core/package.json && \
		grep -qs '"version": "$(PRISM_VERSION)"' node_modules/@stoplight/prism-cli/package.json && \
		grep -qs '"version": "$(TWILIO_CLI_CORE_VERSION)"' node_modules/@twilio/cli-core/package.json && \
		grep -qs '"version": "$(ICAL_JS_VERSION)"' node_modules/ical.js/package.json; } || \
		npm install --prefix "$(CURDIR)" --no-save --no-package-lock --no-audit --no-fund --silent \
			axe-core@$(AXE_CORE_VERSION) @stoplight/prism-cli@$(PRISM_VERSION) \
			@twilio/cli-core@$(TWILIO_CLI_CORE_VERSION) ical.js@$(ICAL_JS_VERSION)

contract: npm
	@test -x node_modules/.bin/prism || { echo "Prism did not install into node_modules/"; exit 1; }

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install browser contract
	$(BIN)/pytest --cov=core --cov=intake --cov=routing --cov=oncall --cov-branch --cov-report=term:skip-covered $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	@for script in bench/*.py; do \
		case $$(basename $$script) in common*|_*) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .coverage
