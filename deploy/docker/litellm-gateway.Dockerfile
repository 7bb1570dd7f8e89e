# LiteLLM proxy with the RouteIQ gateway client installed: the mounted config.yaml enables the
# strategy with `litellm_settings.callbacks: ["gateway_client.proxy.handler"]`, which LiteLLM
# imports from this package (no hook file is copied). Build from the repo root:
#   docker build -f deploy/docker/litellm-gateway.Dockerfile -t routeiq/litellm-gateway .
FROM python:3.11-slim AS build
WORKDIR /src
# litellm[proxy] as in `make proxy-venv` (PROXY_LITELLM): constraints.txt pins litellm 1.110,
# whose [proxy] extra needs a litellm-proxy release the index does not have. The OTel SDK and
# OTLP/gRPC exporter (constraints.txt's pins) are what LiteLLM's `otel` callback exports with;
# litellm[proxy] brings only the API and SDK.
COPY pyproject.toml constraints.txt README.md LICENSE ./
RUN python -m venv /opt/venv \
 && mkdir -p decision_service gateway_client trainer \
 && touch decision_service/__init__.py gateway_client/__init__.py trainer/__init__.py \
 && /opt/venv/bin/pip install --no-cache-dir '.[gateway]' 'litellm[proxy]==1.108.7' \
      'opentelemetry-sdk==1.45.2' 'opentelemetry-exporter-otlp-proto-grpc==1.45.2' \
 && /opt/venv/bin/pip uninstall -y routeiq
COPY routeiq ./routeiq
COPY decision_service ./decision_service
COPY gateway_client ./gateway_client
COPY trainer ./trainer
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin routeiq
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True
USER 10001
EXPOSE 4000 9465
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health/liveliness', timeout=2)"]
ENTRYPOINT ["litellm"]
CMD ["--config", "/app/config/config.yaml", "--port", "4000", "--num_workers", "1"]
