# make demo: the main job on the built-in data.  make test: the whole suite.  make docs: the site.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test docs lint bench sdist clean

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

# The site is built strictly (a broken link, anchor or docstring reference fails) and quietly: the
# log is printed only when the build fails (mkdocs --quiet would also stop --strict counting).
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

test: $(STAMP)
	$(BIN)/ruff check .
	@mkdir -p build
	@$(MKDOCS) build --strict --site-dir build/docs-check > build/docs-check.log 2>&1 \
		|| { grep -v '^INFO' build/docs-check.log; exit 1; }
	$(BIN)/mypy  # the engine, src/gradcheck/core/ (pyproject.toml's [tool.mypy])
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(MKDOCS) build --strict

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

sdist: $(STAMP)
	$(BIN)/python -m pip install -q build
	$(BIN)/python -m build --sdist

clean:
	rm -rf $(VENV) build dist site *.egg-info src/*.egg-info
