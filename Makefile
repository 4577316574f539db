# The two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install preflight migrate seed lint format test-fast bench test-tools

# The venv counts as made only once pip is in it: a venv left half-made (python but no
# pip, after an interrupted or failed `python -m venv`) is made again, not taken as done.
$(BIN)/pip:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required ($(PYTHON) is $$($(PYTHON) --version 2>&1)); run: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

preflight: install
	@$(BIN)/python manage.py preflight --create-database

# rebuild_rollups --not-ready: fills the usage rollups by endpoint of licenses that had
# history before billing.0014 (once; afterwards one query).
migrate: preflight
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py rebuild_rollups --not-ready

# The demo usage comes from the upstream: `seed` needs one answering on UPSTREAM_URL.
seed: migrate
	$(BIN)/python manage.py seed_demo

# run_portal starts the simulator, waits for it, runs seed_demo, then web, worker and beat.
# Ports: PORT (default 8000, from the environment or .env); portal/settings/ derives the rest.
run: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py run_portal --seed-demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: preflight lint test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

# Chromium for the browser tests and pdftoppm for the PDF tests, installed with apt when
# they are missing or do not run (as root, or through sudo), waiting out a fresh machine's
# first-boot apt; otherwise one line says what to run (tests/install_test_tools.sh).
test-tools:
	@sh tests/install_test_tools.sh

# Only the fast tests (no browser, no real worker, no fault injection).
test-fast: preflight
	$(BIN)/pytest -m "not browser and not worker and not faults" $(PYTEST_ARGS)

# The benchmarks, written to docs/benchmarks.md (about 30 minutes on 2 cores, part 4 with
# its replica ~10 of them, plus 5-15 minutes each to load the bench database and part 4's
# private primary the first time). BENCH_ARGS=--quick: no 10 M license, fewer
# rounds, written to bench/data/ instead. Installs wrk (apt) when it is missing.
bench: preflight
	$(BIN)/python -m bench $(BENCH_ARGS)
