# The two commands: `make run` (the platform, with demo data, on SQLite) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstalled when pyproject.toml or this file changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: run test test-quick test-sqlite test-postgres lint typecheck schema bench venv

venv: $(STAMP)

# The project itself is installed editable with its dependencies, so that `from analytics import ...` works
# with the venv's python from any folder (not only from this checkout).
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	@$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev,wandb]'
	@rm -f $(VENV)/.installed-* && touch $@

run: venv
	$(PY) -m toolweaver_site.devserver

# The suite runs on SQLite, then again on a PostgreSQL server it starts itself.
test: test-sqlite test-postgres

test-sqlite: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-postgres: venv
	TOOLWEAVER_TEST_DB=postgres $(PY) -m pytest $(PYTEST_ARGS)

# The quick local loop: SQLite only, without the load and fault tests marked `long`.
test-quick: venv
	$(PY) -m pytest -m "not long" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	TOOLWEAVER_DATA_DIR=$$(mktemp -d) $(VENV)/bin/mypy analytics monitoring alerts toolweaver_site

schema: venv
	TOOLWEAVER_DATA_DIR=$$(mktemp -d) $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

bench: venv
	$(PY) -m bench
