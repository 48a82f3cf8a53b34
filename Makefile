# Set-up and everyday commands. `make demo` and `make test` install everything they need.
PYTHON ?= python3
PIP_INSTALL = $(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test test-slow test-all bench mutate

.installed: pyproject.toml constraints.txt
	$(PIP_INSTALL) -e ".[test]"
	touch .installed

.browser:
	bash scripts/install-test-browser.sh
	touch .browser

install: .installed

demo: .installed
	$(PYTHON) -m sphaera_tables demo demo-results

test: .installed .browser
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -m "not slow" -q

test-slow: .installed .browser
	$(PYTHON) -m pytest -m slow -q || [ $$? -eq 5 ]

test-all: test test-slow

bench: .installed
	for script in bench/*.py; do $(PYTHON) $$script || exit 1; done

# Mutation testing of the core modules (slow; not part of CI): docs/testing.md. mutmut lives in
# its own virtual environment on top of this one, so `make test`'s packages stay as they are.
# `make mutate MODULES="sphaera_tables/cells.py sphaera_tables/search.py"` picks modules.
MUTATE_VENV = .venv-mutate
MODULES ?=

$(MUTATE_VENV)/.installed: pyproject.toml constraints.txt .installed
	$(PYTHON) -m venv --system-site-packages $(MUTATE_VENV)
	$(MUTATE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[mutate]"
	touch $@

mutate: $(MUTATE_VENV)/.installed
	nice -n 15 $(MUTATE_VENV)/bin/python scripts/mutate.py $(MODULES)
