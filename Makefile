# The two set-up commands of the README:
#   make build   install stackgen in .venv and build the default spec into generated/
#   make test    install what the tests need (real promtool, amtool, node_exporter, Compose) and run them
#                on TEST_JOBS pytest-xdist workers (default 4, two per core of the 2-core
#                development machine: the live tests mostly wait on real servers)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
APT_PACKAGES = prometheus prometheus-alertmanager prometheus-node-exporter
TEST_JOBS ?= 4
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: build test venv tools bench clean

$(BIN)/stackgen: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# bytecode now, as `pip install .` makes it: with PYTHONDONTWRITEBYTECODE set, an editable
	# install would compile every stackgen module at each start (a quarter of a lint)
	$(BIN)/python -m compileall -q stackgen
	touch $@

venv: $(BIN)/stackgen

build: venv
	$(BIN)/stackgen build specs/stack.yaml

tools:
	@if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null \
	    || ! command -v prometheus-alertmanager >/dev/null || ! command -v prometheus-node-exporter >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

test: tools venv
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist worksteal

bench: venv
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) .pytest_cache
