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

# Local portal on SQLite with the demo loaded: the embedded engine (canary_tick) and the
# demo's traffic run beside the server, at a demo time scale. With nginx installed,
# demo_traffic puts checkout and search behind a real nginx (DEMO_NGINX_PORTS, default
# 8081 and 8082) in front of four tiny upstreams, sends DEMO_RATE real requests a second to
# each and deploys the demo's releases once that runs. 1% of that is a few canary requests
# a second, so a 10-minute phase lasts 15 s (a rule's 1-minute window 2 s) and a window
# counts from 5 canary requests. Without nginx (or with SIMULATE=1) the traffic is
# simulated and a 10-minute phase lasts 10 s. Needs neither PostgreSQL nor Redis.
TICK_EVERY ?= 1
NGINX_FOUND := $(shell command -v nginx || command -v /usr/sbin/nginx || command -v /usr/local/sbin/nginx)
ifeq ($(if $(SIMULATE),,$(NGINX_FOUND)),)
DEMO_TIME_SCALE ?= 60
DEMO_MIN_REQUESTS ?= 100
DEMO_EVERY ?= 1
else
DEMO_TIME_SCALE ?= 40
DEMO_MIN_REQUESTS ?= 5
DEMO_EVERY ?= 0.5
endif
DEMO_RATE ?= 300
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	export DEBUG=1 CANARY_TIME_SCALE=$(DEMO_TIME_SCALE) CANARY_MIN_REQUESTS=$(DEMO_MIN_REQUESTS); \
	$(BIN)/python manage.py canary_tick --every $(TICK_EVERY) & tick=$$!; \
	$(BIN)/python manage.py demo_traffic --every $(DEMO_EVERY) --rate $(DEMO_RATE) \
		--failing search --rollouts \
		$(if $(SIMULATE),--simulate) & traffic=$$!; \
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
