# Two commands on a fresh machine: `make explore` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
STORE ?=
CHROMIUM ?= /usr/bin/chromium

.PHONY: explore test install install-dev chromium compiler bench sample clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The install compiles ingest/store/_spanpack.c and ingest/sources/_jsonarrow.c in place, hence the C sources.
$(VENV)/.installed: pyproject.toml constraints.txt setup.py ingest/store/_spanpack.c ingest/sources/_jsonarrow.c | $(PY) compiler
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt setup.py ingest/store/_spanpack.c ingest/sources/_jsonarrow.c | $(PY) compiler
	$(PIP) -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## explore: create .venv, install, and serve the explorer on http://localhost:8501 (sample store unless STORE=DIR)
explore: install
	$(VENV)/bin/streamlit run explorer --server.headless true --server.port 8501 \
		--browser.gatherUsageStats false $(if $(STORE),-- --store $(STORE))

## compiler: a C compiler for ingest/*/*.c (without one the install still works, on the slower pure-Python/DuckDB paths)
compiler:
	@command -v cc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc; }

## chromium: the system Chromium the browser tests drive (Playwright never downloads a browser here)
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## test: create .venv, install dev extras and Chromium, run the whole suite
test: install-dev chromium
	$(PY) -m pytest

## bench: print every benchmark's figures (see docs/benchmarks.md)
bench: install-dev
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts build ingest/*/*.so
