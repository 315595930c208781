# cfadmin: `make run` serves it locally, `make test` checks everything. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-reconcile bench-admin bench-web venv chromium clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "cfadmin needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: web + worker on http://127.0.0.1:8000 (SQLite in data/), an admin login printed
run: venv
	$(BIN)/python -m cfadmin.devenv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py install_schedules
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py runlocal

## lint: ruff, migrations in step with models, Dockerfile
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/hadolint --failure-threshold warning --no-color Dockerfile

## test: lint, then the whole suite (DATABASE_URL selects PostgreSQL)
test: lint chromium
	$(BIN)/pytest

## bench: provisioning overhead, scaling with workers, throughput under Coolify's rate limit;
## then reconcile's time, queries and memory at 100 / 1,000 / 5,000 stacks; then bench-admin;
## then the global search's time per kind of query at 10,000 stacks (bench/search.py)
bench: venv
	$(BIN)/python bench/provisioning.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/admin.py
	$(BIN)/python bench/search.py

bench-reconcile: venv
	$(BIN)/python bench/reconcile.py

## bench-admin: every admin page's time, queries and size at 1/100 and full scale (10,000
## stacks, a year of history), PostgreSQL and SQLite (ARGS="--db pg --size large" narrows it)
bench-admin: venv
	$(BIN)/python bench/admin.py $(ARGS)

## bench-web: gunicorn as the Dockerfile runs it, PostgreSQL, full scale, locust with 10 and 50
## clients on the stack list, a stack page, the dashboard and the login (loopback only)
bench-web: venv
	@$(BIN)/python -c 'import locust' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python bench/web.py $(ARGS)

# Browser tests use Debian's Chromium; never a downloaded browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian's chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; \
		fi; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
