# Two commands work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CKSUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-test-$(CKSUM)

.PHONY: demo test test-all bench docs lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per extra (test, plot, docs), renewed when pyproject.toml changes.
$(VENV)/.installed-%-$(CKSUM): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[$*]"
	rm -f $(VENV)/.installed-$*-* && touch $@

demo: $(VENV)/.installed-plot-$(CKSUM)
	$(BIN)/qsync reproduce all --quick --out figures

# Tests in parallel processes (pytest-xdist), each its own JAX process: one per usable core
# (the library's own count, from qsync_jax/_pool.py, which imports nothing but os), 2 to 4.
WORKERS := $(shell cd qsync_jax && $(PYTHON) -B -c "from _pool import usable_cores; print(min(4, max(2, usable_cores())))")
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS)

test: $(STAMP)
	$(PYTEST) --durations=25

test-all: $(STAMP)
	$(PYTEST) -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The site, into build/site; warnings are errors; offline (notebooks are executed at reduced
# size and cached in build/docs-notebooks).
docs: $(VENV)/.installed-docs-$(CKSUM)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/python -m mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
