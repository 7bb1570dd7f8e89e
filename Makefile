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
	@echo "make check-floors  install the lowest allowed dependency versions and smoke-test"

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Encoders (fp32 exported once into encoder-fp32, the int8-t128 default derived into encoder;
# both reused), synthetic data, KNN and MLP bundles trained on the default.
$(ARTIFACTS)/.built: $(VENV)/.installed $(shell find trainer decision_service -name '*.py' 2>/dev/null)
	$(PY) -m trainer build --out $(ARTIFACTS)
	touch $@

artifacts: $(ARTIFACTS)/.built

demo: $(ARTIFACTS)/.built
	$(PY) -m tools.demo --artifacts $(ARTIFACTS)

# Latency/throughput of the default configuration (int8-t128, what `make artifacts` builds) and
# the fp32 reference (built once into $(ARTIFACTS)/fp32): in process, over gRPC from another
# process, the seeds' way, the LiteLLM strategy, Health/Check under saturation, cold start and
# RSS, the process model and the HPA rule; every BRIEF target MET / NOT MET. ~12 min.
# Smoke run: make bench BENCH_ARGS=--quick
bench: $(ARTIFACTS)/.built
	$(PY) -m tools.bench.run --artifacts $(ARTIFACTS) --out bench-results.json $(BENCH_ARGS)

serve: $(ARTIFACTS)/.built
	$(PY) -m decision_service --bundle $(ARTIFACTS)/knn --port $(PORT)

test: $(VENV)/.installed check-proto proxy-venv
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

# The lowest versions pyproject.toml allows, installed in scratch venvs (base + service, and
# base + gateway with LiteLLM's floor) with this repo's wheel, then a smoke run there (~2 min
# with a warm pip cache). tests/packaging/check_floors.py says what it checks.
.PHONY: check-floors
check-floors: $(VENV)/.installed
	$(PY) -m tests.packaging.check_floors

# Pin the exact versions the suite passed with (run after changing pyproject.toml).
lock: $(VENV)/.installed
	$(PY) -m pip freeze --exclude-editable | grep -v '^routeiq' > constraints.txt

clean:
	rm -rf $(ARTIFACTS) .cache build *.egg-info

# Deploy checks (no cluster, no Docker): every overlay renders with kubectl kustomize and
# validates against the Kubernetes schemas offline; tests/deploy asserts the manifests'
# properties; the dashboard's and alerts' metrics exist in a live /metrics scrape.
.PHONY: check-deploy
check-deploy: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/deploy tests/integration/test_deploy_metrics.py

# A second venv with the LiteLLM proxy (litellm[proxy] pins versions the main venv does not use)
# and this repo installed without deps; tests/integration/test_proxy_*.py start its `litellm`.
PROXY_VENV := .venv-proxy
PROXY_LITELLM ?= 1.108.7

# The repo goes in with its gateway extra, so the proxy venv obeys pyproject.toml's floors
# and LiteLLM range (PROXY_LITELLM must fall inside it), with the OTel SDK and OTLP exporter
# the gateway image installs for LiteLLM's otel callback (constraints.txt's pins).
$(PROXY_VENV)/.installed: pyproject.toml
	test -x $(PROXY_VENV)/bin/python || $(PYTHON) -m venv $(PROXY_VENV)
	$(PROXY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PROXY_VENV)/bin/python -m pip install --quiet 'litellm[proxy]==$(PROXY_LITELLM)' \
		-e '.[gateway]' 'opentelemetry-sdk==1.45.2' 'opentelemetry-exporter-otlp-proto-grpc==1.45.2'
	touch $@

.PHONY: proxy-venv
proxy-venv: $(PROXY_VENV)/.installed

# Routing quality on RouteLLM's MMLU CSVs with the serving encoder ($(ARTIFACTS)/encoder, the
# int8-t128 default, built by the artifacts rule): every router family trained on one half and
# evaluated on the other, for split seeds 0 1 2 (mean and bootstrap 95% intervals), beside
# random, oracle, single models and RouteLLM's published figures; writes quality.json and
# three PNGs. Embeddings are cached in .cache/embeddings (keyed by encoder and text hash).
DATA ?= ../shared/data/routellm-mmlu
.PHONY: bench-quality
bench-quality: $(ARTIFACTS)/.built
	$(PY) -m tools.quality bench-quality --data $(DATA) --encoder $(ARTIFACTS)/encoder \
		--out $(ARTIFACTS)/bench-quality --cache .cache/embeddings --seeds 0 1 2

# The int8 encoder and shorter token limits beside fp32 at 256 tokens, on the same split: each
# variant embeds the prompts itself and trains its own routers (knn, mlp); prints APGR, CPT,
# agreement with the fp32 router, cosine to fp32, truncated share and single-prompt encoder
# latency. Figures in $(ARTIFACTS)/bench-encoder/bench_encoder.json.
.PHONY: bench-encoder
bench-encoder: $(VENV)/.installed
	$(PY) -m trainer encoder --out $(ARTIFACTS)/encoder-fp32
	$(PY) -m tools.quality bench-encoder --data $(DATA) --encoder $(ARTIFACTS)/encoder-fp32 \
		--out $(ARTIFACTS)/bench-encoder --cache .cache/embeddings

# What the LiteLLM strategy adds over a bare Route call, and the open-breaker pick (prints p50/p99).
.PHONY: bench-gateway
bench-gateway: $(ARTIFACTS)/.built
	$(PY) -m tools.bench.gateway_overhead --bundle $(ARTIFACTS)/knn

# docs/configuration.md, generated from the settings classes' field descriptions
# (tests/unit/test_config_reference.py fails when it is stale).
.PHONY: docs
docs: $(VENV)/.installed
	$(PY) -m tools.config_reference
