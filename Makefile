# make demo: the main job on the built-in data.  make test: the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint bench sdist clean

# The demo needs only the core and the demo extra (matplotlib, scikit-learn).
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[demo]"
	touch $(DEMO_STAMP)

# The tests need everything: torch first, pinned to the CPU wheel so nothing pulls a CUDA build
# (users get torch>=2.1 from the torch extra), then the test extra (jax, dask, nbclient, ...).
$(STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/gradcheck demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy  # the engine, src/gradcheck/core/ (pyproject.toml's [tool.mypy])
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

sdist: $(STAMP)
	$(BIN)/python -m pip install -q build
	$(BIN)/python -m build --sdist

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
