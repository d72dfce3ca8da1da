# The two commands a new user needs: `make serve` and `make test`.
# Both create .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Wheels of the runtime and build dependencies: tests/functional/test_packaging.py
# installs the project from them into a fresh venv, offline.
WHEELHOUSE := $(VENV)/wheelhouse

HOST     ?= 127.0.0.1
PORT     ?= 9292
DATA_DIR ?= var
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.PHONY: serve test lint bench venv clean-venv prometheus

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
	    print(*p["build-system"]["requires"], *p["project"]["dependencies"], sep="\n")' > $(VENV)/wheelhouse.txt
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) -r $(VENV)/wheelhouse.txt
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/imagecache serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# Lint and types first: they take seconds and name the line at fault.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Debian's prometheus, for the dashboard test (tests/functional/test_dashboard.py), when missing:
# installed as root, its service left stopped (the test runs the binary on a port of its own).
# Without root it says how to get it, and the test skips (under CI=true it fails).
prometheus:
	@if command -v prometheus >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "prometheus is missing and this is not root with apt-get: apt-get install prometheus"; exit 0; fi; \
	echo "prometheus is missing: apt-get install -y prometheus"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; \
	if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi

# The benchmarks (never part of `make test`): every scenario against imagecache,
# Glance 33 and the limit, written to bench/RESULTS.md (~22 min with the storm; see bench/README.md).
# make bench BENCH_ARGS='--scenarios hit,miss --targets imagecache,limit --output -'
bench: $(STAMP)
	$(BIN)/python -m bench all --runs 5 $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
