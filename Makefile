# RouteIQ: every target builds what it needs, starting from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARTIFACTS ?= artifacts
PORT ?= 50051
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install demo serve test unit integration lint proto check-proto artifacts lock clean bench

help:
	@echo "make demo    train on synthetic data, export ONNX, serve, route through LiteLLM"
	@echo "make test    the whole test suite (unit + integration, real servers on loopback)"
	@echo "make serve   serve \$$ARTIFACTS/knn on \$$PORT (after make artifacts)"
	@echo "make bench   latency and throughput figures (in process, gRPC, seeds)"
	@echo "make lint    ruff + mypy;  make proto  regenerate gRPC stubs"

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Encoder (exported once, reused), synthetic data, KNN and MLP bundles.
$(ARTIFACTS)/.built: $(VENV)/.installed $(shell find trainer decision_service -name '*.py' 2>/dev/null)
	$(PY) -m trainer build --out $(ARTIFACTS)
	touch $@

artifacts: $(ARTIFACTS)/.built

demo: $(ARTIFACTS)/.built
	$(PY) -m gateway_client.demo --artifacts $(ARTIFACTS)

# Latency/throughput table: in process, over gRPC from another process, and the seeds' way.
bench: $(ARTIFACTS)/.built
	$(PY) -m tests.bench.run --artifacts $(ARTIFACTS) --out bench-results.json

serve: $(ARTIFACTS)/.built
	$(PY) -m decision_service --bundle $(ARTIFACTS)/knn --port $(PORT)

test: $(VENV)/.installed check-proto
	$(PY) -m pytest -q -p no:cacheprovider

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest -q tests/integration

lint: $(VENV)/.installed check-proto
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

proto: $(VENV)/.installed
	$(PY) proto/generate.py

check-proto: $(VENV)/.installed
	$(PY) proto/generate.py --check

# Pin the exact versions the suite passed with (run after changing pyproject.toml).
lock: $(VENV)/.installed
	$(PY) -m pip freeze --exclude-editable | grep -v '^routeiq' > constraints.txt

clean:
	rm -rf $(ARTIFACTS) .cache build *.egg-info
