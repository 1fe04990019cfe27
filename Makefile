# Two commands on a fresh machine: `make explore` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
STORE ?=
CHROMIUM ?= /usr/bin/chromium

.PHONY: explore test lint test-sanitize install install-dev chromium java compiler bench sample clean

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

## java: a Java runtime for the Spark test (pyspark runs Spark in a JVM; apt's JRE, never a download of its own)
java:
	@command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }

## lint: ruff's lint rules over the tree and mypy over ingest/ and explorer/ (settings in pyproject.toml)
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## test: create .venv, install dev extras, Chromium and a JRE, lint and type-check, run the whole suite,
## then the fuzz and reader tests again under ASan/UBSan (test-sanitize)
test: install-dev chromium java lint
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-sanitize

# The compiled readers under AddressSanitizer + UndefinedBehaviorSanitizer: built apart (the
# installed, optimised modules stay as they are), loaded by the tests through LANGSWARM_SANITIZED_EXT,
# with libasan preloaded into the (uninstrumented) interpreter. Leak detection is off: CPython keeps
# its interned objects at exit. Any report aborts the run.
SANITIZE_DIR := build/sanitize/ingest
SANITIZE_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_EXAMPLES ?= 60

## test-sanitize: the fuzz and reader tests against ASan/UBSan builds of the two C modules
test-sanitize: install-dev
	@inc=$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['include'])"); \
	suffix=$$($(PY) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"); \
	for src in ingest/sources/_jsonarrow.c ingest/store/_spanpack.c; do \
		out=$(SANITIZE_DIR)/$$(basename $$(dirname $$src)); mkdir -p $$out; \
		cc -shared -fPIC $(SANITIZE_FLAGS) -I$$inc $$src -o $$out/$$(basename $$src .c)$$suffix || exit 1; \
	done
	LD_PRELOAD=$$(cc -print-file-name=libasan.so) \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LANGSWARM_SANITIZED_EXT=$(SANITIZE_DIR) LANGSWARM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(PY) -m pytest -q -p no:cacheprovider --capture=sys tests/fuzz tests/test_jsonarrow.py tests/test_spanpack.py

## bench: print every benchmark's figures (see docs/benchmarks.md)
bench: install-dev
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts build ingest/*/*.so
