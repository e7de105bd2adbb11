# The portal's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# The suite runs on PostgreSQL and Redis (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/canary_portal
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: install run test lint format typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Local portal on SQLite with the demo loaded: the embedded engine (canary_tick) and a
# traffic simulator run beside the server, at a demo time scale (a 10-minute phase lasts
# 10 seconds). Needs neither PostgreSQL nor Redis.
TICK_EVERY ?= 1
DEMO_TIME_SCALE ?= 60
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 CANARY_TIME_SCALE=$(DEMO_TIME_SCALE) $(BIN)/python manage.py seed_demo --rollouts
	export DEBUG=1 CANARY_TIME_SCALE=$(DEMO_TIME_SCALE); \
	$(BIN)/python manage.py canary_tick --every $(TICK_EVERY) & tick=$$!; \
	$(BIN)/python manage.py demo_traffic --every 1 --failing search & traffic=$$!; \
	trap 'kill $$tick $$traffic 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	DEBUG=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/pytest $(PYTEST_ARGS)

# Besides style: rollouts/ keeps its shape (DESIGN.md): no module over 350 lines (models
# and migrations aside) and no import cycles (import-linter, contracts in pyproject.toml).
MAX_MODULE_LINES := 350
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@awk -v max=$(MAX_MODULE_LINES) 'FNR == max + 1 { print FILENAME ": over " max " lines"; bad = 1 } \
		END { exit bad }' $$(find rollouts -name '*.py' -not -path '*/migrations/*' -not -name models.py)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	DEBUG=1 $(BIN)/mypy

clean:
	rm -rf $(VENV) var/*.sqlite3* staticfiles .pytest_cache .mypy_cache .ruff_cache
