# Two commands on a fresh machine with only Python 3.11+:  `make run`  and  `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install run test test-faults test-fuzz test-browser screenshots lint check bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

## Start the API and the scheduler on the embedded Postgres (no configuration needed).
run: install
	$(BIN)/penguinmails serve

## Run the test suite (uses PENGUINMAILS_TEST_DATABASE_URL, else an embedded Postgres).
## The fault-injection suite, the API fuzzing and the browser tests are their own steps
## (`make test-faults`, `make test-fuzz`, `make test-browser`).
test: install
	$(BIN)/pytest --ignore=tests/faults --ignore=tests/fuzz --ignore=tests/browser

## Fault injection: workers killed at random, many clients at once, the database restarted,
## poisoned input, unclean exits. Bounded: each test stops itself; the whole step at 15 min.
test-faults: install
	timeout 900 $(BIN)/pytest tests/faults

## Static checks: ruff, mypy (strict) and the import rules (import-linter, pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## The served OpenAPI fuzzed by schemathesis (PENGUINMAILS_FUZZ_EXAMPLES per operation, default
## 25): no 5xx, every answer as the schema says. Bounded at 10 min.
test-fuzz: install
	timeout 600 $(BIN)/pytest tests/fuzz

## The console in a real headless Chromium (Debian's `chromium`, driven by Playwright's Python
## API; no browser download). PENGUINMAILS_REQUIRE_CHROMIUM=1 makes a missing browser a failure
## instead of a skip. Bounded at 10 min.
test-browser: install
	PENGUINMAILS_REQUIRE_CHROMIUM=1 timeout 600 $(BIN)/pytest tests/browser

## Regenerate the console screenshots in docs/console/ (desktop and phone width).
screenshots: install
	PENGUINMAILS_REQUIRE_CHROMIUM=1 PENGUINMAILS_SCREENSHOTS=docs/console timeout 600 $(BIN)/pytest tests/browser/test_screenshots.py

check: lint test test-faults test-fuzz test-browser

## Benchmarks print their figures; see README "Benchmarks".
bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .penguinmails-test .mypy_cache .ruff_cache
