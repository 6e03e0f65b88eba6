# Quick start:  make demo   (set up, then run the demo on SQLite)
#               make test   (set up, then run every test: SQLite, and
#                            PostgreSQL when a server is reachable)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mcfields-installed
WASM   := mcfields/_guest/mcfields.wasm

# The interpreters of the test matrix (tox.ini): pyenv's, where the machine
# has pyenv, else whatever python3.X is on PATH.
PYENV_BINS := $(shell command -v pyenv >/dev/null 2>&1 && for v in 3.11 3.12 3.13; do \
	d="$$(pyenv root)/versions/$$(pyenv latest $$v 2>/dev/null)/bin"; \
	[ -x "$$d/python$$v" ] && printf '%s:' "$$d"; done)
TOX := PATH="$(PYENV_BINS)$$PATH" $(VENV)/bin/tox

.PHONY: setup wasm demo serve test cell test-sqlite test-postgres test-slow lint bench wheel postgres clean

setup: $(STAMP) $(WASM)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "ziglang==0.15.1" "tox>=4.11" -e ".[test,bench]"
	touch $(STAMP)

# The editable install builds the guest too; this rule rebuilds it when the
# shim or the build script changes.
$(WASM): guest/shim.c guest/build.py guest/wasm.sha256 | $(STAMP)
	$(PY) guest/build.py

wasm: $(STAMP)
	$(PY) guest/build.py

demo: setup
	$(PY) -m testproject.demo_script

serve: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_superuser
	@echo "Admin: http://127.0.0.1:8000/admin/  (user: demo  password: demo — demo only)"
	$(PY) manage.py runserver 127.0.0.1:8000

lint: setup
	$(VENV)/bin/ruff check mcfields tests testproject bench guest

# Every cell of the matrix (tox.ini), each on SQLite and PostgreSQL; tox
# ends with one line per cell.  MCFIELDS_SKIP_MISSING_CELLS=false (CI)
# fails a cell whose interpreter is missing instead of skipping it.
test: setup lint
	$(TOX) run

# One cell, e.g. make cell CELL=py313-django61
cell: setup
	$(TOX) run -e $(CELL)

test-sqlite: setup
	$(PY) -m pytest

test-postgres: setup
	MCFIELDS_TEST_DB=postgres $(PY) -m pytest tests/django tests/rotation tests/adoption tests/writes

test-slow: setup
	$(PY) -m pytest -m slow

bench: setup
	$(PY) bench/crypto_bench.py
	$(PY) bench/orm_bench.py
	$(PY) bench/rotate_bench.py

wheel: setup
	$(PY) -m pip wheel --no-deps -w dist .

postgres:
	bash .ci/postgres.sh

clean:
	rm -rf $(VENV) .tox build dist guest/.cache $(WASM) testproject/db.sqlite3
