# Two commands matter: `make run` (set up and serve) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Three pytest-xdist workers on two cores: much of the suite waits on the processes it starts
# (workers, brokers, gunicorn) and on the faults it injects; a third worker fills those waits.
TEST_WORKERS ?= 3
ARGS ?=
# The Procfile's processes with .env loaded (honcho reads it; its PORT beats the shell's, and
# 8080 applies when neither sets one). A process name after it runs that one alone.
HONCHO = PORT="$${PORT:-8080}" PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --procfile Procfile

.PHONY: run test lint format migrate worker worker-webhooks beat sandbox load bench bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: requirements/dev.txt requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.base-installed

## run: install, migrate, seed demo data and serve on $$HOST:$$PORT (0.0.0.0:8080) with gunicorn;
##      with a broker configured (.env) also the Celery workers, beat and the payment sandbox.
##      Ports come from .env: PORT for web; the sandbox listens on PAYMENT_PROVIDER_URL's port.
run: $(VENV)/.base-installed
	$(BIN)/python manage.py ensure_database
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@mkdir -p var
	@if $(BIN)/python -c "import sys, ecommerce.settings as s; sys.exit(not s.CELERY_TASK_ALWAYS_EAGER)"; then \
		echo "embedded mode: tasks run in-process"; \
		exec $(BIN)/gunicorn --config ecommerce/gunicorn.conf.py ecommerce.wsgi; \
	else \
		echo "full mode: web, workers, beat and payment sandbox (Procfile)"; \
		exec env $(HONCHO); \
	fi

# Debian tools the suite uses, installed when missing (as root; otherwise it says how):
# promtool (package `prometheus`) runs the alert rule tests, chromium the admin walk in
# tests/browser (which skips, saying why, without it).
TEST_TOOLS := promtool:prometheus chromium:chromium
# wrk drives the benchmark (make bench), through nginx for its constant-rate runs.
BENCH_TOOLS := wrk:wrk nginx:nginx
.PHONY: test-tools bench-tools
test-tools bench-tools:
	@for pair in $(if $(filter bench-tools,$@),$(BENCH_TOOLS),$(TEST_TOOLS)); do \
		tool=$${pair%%:*}; package=$${pair#*:}; \
		command -v $$tool >/dev/null 2>&1 && continue; \
		if [ "$$(id -u)" -eq 0 ]; then \
			echo "installing $$tool (Debian package $$package)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $$package >/dev/null; \
		else \
			echo "$$tool missing: run 'sudo apt-get install $$package'"; \
		fi; \
	done

## test: the whole suite on real PostgreSQL and Redis (DATABASE_URL / REDIS_URL override)
# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE):
# the suite starts a hundred-odd Django processes (gunicorn, Celery, the sandbox), and
# each would compile the project again.
test: $(VENV)/.dev-installed test-tools
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest --create-db -n $(TEST_WORKERS) --dist worksteal $(ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.base-installed
	$(BIN)/python manage.py migrate --noinput

## worker, worker-webhooks, beat, sandbox: one process of the Procfile alone, as `make run`
##         starts it (.env loaded), to debug it while the rest runs elsewhere. `make run`
##         already starts them all in full mode: never run these beside it (two beats).
worker: $(VENV)/.base-installed
	@mkdir -p var
	$(HONCHO) worker

worker-webhooks: $(VENV)/.base-installed
	@mkdir -p var
	$(HONCHO) webhooks

beat: $(VENV)/.base-installed
	@mkdir -p var
	$(HONCHO) beat

sandbox: $(VENV)/.base-installed
	@mkdir -p var
	$(HONCHO) sandbox

## load: the mixed-traffic scenario of docs/capacity.md (Locust, bench/locustfile.py) against
##       one web pod, one worker and the database, started on free loopback ports (RATE
##       iterations/s for DURATION s); exits 1 when a threshold fails. DATABASE_URL / REDIS_URL
##       override its defaults.
RATE ?= 12
DURATION ?= 45
load: $(VENV)/.dev-installed
	$(BIN)/python bench/load.py --rate $(RATE) --duration $(DURATION)

## bench: the PERFORMANCE.md targets against ceilings measured in the same run (bench/run.py,
##        docs/performance.md): prints every target with its figure, ratio and PASS/FAIL, exit
##        1 on a FAIL. Uses (drops, recreates) BENCH_DATABASE_URL (default ecommerce_bench) and
##        flushes BENCH_REDIS_URL (default redis db 9). ARGS=--full for the memory targets'
##        counts; bench-smoke: a run of under a minute that proves the harness runs.
bench: $(VENV)/.dev-installed bench-tools
	$(BIN)/python bench/run.py $(ARGS)

bench-smoke: $(VENV)/.dev-installed bench-tools
	$(BIN)/python bench/run.py --smoke $(ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 var
