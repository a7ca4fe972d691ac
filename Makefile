# Two commands matter: `make run` (set up and serve) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 2
ARGS ?=

.PHONY: run test lint format migrate worker beat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: requirements/dev.txt requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.base-installed

## run: install, migrate, seed demo data and serve on 0.0.0.0:$$PORT (8080) with gunicorn
run: $(VENV)/.base-installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/gunicorn --config ecommerce/gunicorn.conf.py ecommerce.wsgi

## test: the whole suite on real PostgreSQL and Redis (DATABASE_URL / REDIS_URL override)
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest --create-db -n $(TEST_WORKERS) $(ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.base-installed
	$(BIN)/python manage.py migrate --noinput

worker: $(VENV)/.base-installed
	$(BIN)/celery -A ecommerce worker --loglevel INFO

beat: $(VENV)/.base-installed
	$(BIN)/celery -A ecommerce beat --loglevel INFO

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
