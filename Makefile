# AIConexus Gateway. `make run` starts the gateway, `make test` runs every test; both set up
# their own virtualenv (.venv) on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# `make run` passes --host/--port only when HOST/PORT are given to make (`make run PORT=9000`);
# otherwise the gateway's own configuration applies (GATEWAY_HOST, GATEWAY_PORT, defaults).
RUN_FLAGS := $(if $(filter command line,$(origin HOST)),--host $(HOST)) \
	$(if $(filter command line,$(origin PORT)),--port $(PORT)) \
	$(if $(filter command line,$(origin WORKERS)),--workers $(WORKERS))
MONITOR_URL ?= http://$(or $(filter-out 0.0.0.0 ::,$(or $(HOST),$(GATEWAY_HOST))),127.0.0.1):$(or $(PORT),$(GATEWAY_PORT),8000)
PYTEST_ARGS ?=

.PHONY: help run test lint bench bench-quick monitor venv clean

help:
	@echo "make run          start the gateway (make run PORT=9000 HOST=0.0.0.0; or GATEWAY_PORT=...)"
	@echo "                  one process per core: make run WORKERS=4 REDIS_URL=redis://..."
	@echo "make test         install everything the tests need and run them"
	@echo "make lint         ruff + mypy"
	@echo "make bench        benchmark (make bench-quick: under 30 s)"
	@echo "make monitor      live terminal monitor of the local gateway"

$(PY):
	@scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"

$(VENV)/.run-deps: setup.py | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[monitor]'
	@touch $@

$(VENV)/.test-deps: setup.py | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint]'
	@touch $@ $(VENV)/.run-deps

venv: $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(VENV)/bin/aiconexus-gateway $(strip $(RUN_FLAGS))

test: $(VENV)/.test-deps
	@scripts/ensure-test-tools.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check aiconexus_gateway monitor tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(VENV)/.test-deps
	$(PY) -m benchmarks $(BENCH_ARGS)
	$(PY) -m benchmarks.mailbox
	$(PY) -m benchmarks.discovery

bench-quick: $(VENV)/.test-deps
	$(PY) -m benchmarks --quick $(BENCH_ARGS)

monitor: $(VENV)/.run-deps
	$(VENV)/bin/aiconexus-monitor --url $(MONITOR_URL)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
