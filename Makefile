# Set-up and everyday commands. `make demo` and `make test` install everything they need.
PYTHON ?= python3
PIP_INSTALL = $(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test test-slow test-all bench

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
