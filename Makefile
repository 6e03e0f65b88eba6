# Quick start:  make demo   (set up mcfields alone, then run the demo on SQLite)
#               make test   (also install the test tools, then run every test:
#                            SQLite, and PostgreSQL when a server is reachable)
#               make bench  (also install the benchmark peers, then benchmark)
#
# Each target installs only what it needs, once (a stamp file per extra in
# the venv): the demo needs mcfields, Django, wasmtime and ziglang only; the
# test tools and the benchmark peers (pymonocypher has no wheel for every
# Python and then compiles from source) come with `make test` / `make bench`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
BASE   := $(VENV)/.mcfields-installed
WASM   := mcfields/_guest/mcfields.wasm
# The pinned builder: the editable install compiles the guest with it, and
# `make wasm` rebuilds with the same one.
# (editables: what hatchling needs for an editable install.)
BUILD_REQS := "hatchling>=1.21" "editables>=0.3" "ziglang==0.15.1"
# One extra's requirements from pyproject.toml, so that `make test` and
# `make bench` add their tools without rebuilding the editable install.
EXTRA_REQS = $(PY) -c "import sys, tomllib; \
	print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies'][sys.argv[1]]))"

# The interpreters of the test matrix (tox.ini): pyenv's, where the machine
# has pyenv, else whatever python3.X is on PATH.
PYENV_BINS := $(shell command -v pyenv >/dev/null 2>&1 && for v in 3.11 3.12 3.13; do \
	d="$$(pyenv root)/versions/$$(pyenv latest $$v 2>/dev/null)/bin"; \
	[ -x "$$d/python$$v" ] && printf '%s:' "$$d"; done)
TOX := PATH="$(PYENV_BINS)$$PATH" $(VENV)/bin/tox

.PHONY: setup setup-test setup-bench wasm demo serve test cell test-sqlite test-postgres \
	test-slow lint bench wheel dist postgres clean

setup: $(BASE) $(WASM)
setup-test: $(VENV)/.extra-test $(WASM)
setup-bench: $(VENV)/.extra-bench $(WASM)

$(PY):
	@echo "== make: creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)

# --no-build-isolation: build with the venv's own hatchling and ziglang
# instead of installing ziglang (a 94 MB wheel) a second time into pip's
# temporary build environment.  --only-binary: nothing is compiled here.
$(BASE): pyproject.toml | $(PY)
	@echo "== make: installing the build tools (hatchling, ziglang: a 94 MB wheel)"
	$(PIP) install --only-binary :all: --progress-bar on $(BUILD_REQS)
	@echo "== make: installing mcfields (editable) with Django and wasmtime,"
	@echo "         and compiling the WebAssembly guest (Monocypher + guest/shim.c)"
	$(PIP) install --only-binary :all: --no-build-isolation -e .
	@touch $@

$(VENV)/.extra-%: $(BASE) pyproject.toml
	@echo "== make: installing the '$*' extra"
	$(EXTRA_REQS) $* > $(VENV)/requirements-$*.txt
	$(PIP) install -r $(VENV)/requirements-$*.txt
	@touch $@

# The editable install builds the guest too; this rule rebuilds it when the
# shim or the build script changes.
$(WASM): guest/shim.c guest/build.py guest/wasm.sha256 | $(BASE)
	$(PY) guest/build.py

wasm: $(BASE)
	$(PY) guest/build.py

demo: setup
	@echo "== make: running the demo"
	$(PY) -m testproject.demo_script

serve: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_superuser
	@echo "Admin: http://127.0.0.1:8000/admin/  (user: demo  password: demo — demo only)"
	$(PY) manage.py runserver 127.0.0.1:8000

lint: setup-test
	$(VENV)/bin/ruff check mcfields tests testproject bench guest

# tox runs the matrix; it is a tool of this repository, not of the tests.
$(VENV)/.tox: $(BASE)
	@echo "== make: installing tox"
	$(PIP) install --only-binary :all: "tox>=4.11"
	@touch $@

# Every cell of the matrix (tox.ini), each on SQLite and PostgreSQL; tox
# ends with one line per cell.  MCFIELDS_SKIP_MISSING_CELLS=false (CI)
# fails a cell whose interpreter is missing instead of skipping it.
test: setup-test lint $(VENV)/.tox
	$(TOX) run

# One cell, e.g. make cell CELL=py313-django61
cell: setup-test $(VENV)/.tox
	$(TOX) run -e $(CELL)

test-sqlite: setup-test
	$(PY) -m pytest

test-postgres: setup-test
	MCFIELDS_TEST_DB=postgres $(PY) -m pytest tests/django tests/rotation tests/adoption \
		tests/writes tests/forms tests/drf tests/demo

test-slow: setup-test
	$(PY) -m pytest -m slow

bench: setup-bench
	$(PY) bench/crypto_bench.py
	$(PY) bench/orm_bench.py
	$(PY) bench/rotate_bench.py

# The wheel needs no development setup: pip builds it in an isolated
# environment with the build requirements of pyproject.toml (as wheels).
wheel:
	$(PYTHON) -m pip wheel --no-deps --only-binary :all: -w dist .

# A release: sdist and wheel with `python -m build`, checked by twine
# (docs/RELEASING.md).  Uses its own small venv, not the development one.
RELEASE_VENV ?= .venv-release
dist:
	test -x $(RELEASE_VENV)/bin/python || $(PYTHON) -m venv $(RELEASE_VENV)
	$(RELEASE_VENV)/bin/python -c "import tomllib; \
		print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['release']))" \
		> $(RELEASE_VENV)/requirements-release.txt
	$(RELEASE_VENV)/bin/python -m pip install --quiet --only-binary :all: \
		-r $(RELEASE_VENV)/requirements-release.txt
	rm -f dist/mcfields-*
	$(RELEASE_VENV)/bin/python -m build --outdir dist .
	$(RELEASE_VENV)/bin/python -m twine check --strict dist/mcfields-*

postgres:
	bash .ci/postgres.sh

clean:
	rm -rf $(VENV) $(RELEASE_VENV) .tox build dist guest/.cache $(WASM) testproject/db.sqlite3
