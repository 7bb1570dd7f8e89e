# Serving image: onnxruntime + tokenizers + grpcio, no torch. Runs the decision service
# (the entrypoint) and the sync agent (`routeiq-sync-agent`, the pod's init container and
# sidecar: command overridden). Build from the repo root:
#   docker build -f deploy/docker/decision-service.Dockerfile -t routeiq/decision-service .
FROM python:3.11-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY pyproject.toml constraints.txt README.md LICENSE ./
RUN python -m venv /opt/venv \
 && mkdir -p decision_service gateway_client trainer \
 && touch decision_service/__init__.py gateway_client/__init__.py trainer/__init__.py \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt '.[service]' \
 && /opt/venv/bin/pip uninstall -y routeiq
COPY routeiq ./routeiq
COPY decision_service ./decision_service
COPY gateway_client ./gateway_client
COPY trainer ./trainer
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin routeiq
COPY --from=build /opt/venv /opt/venv
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    ROUTEIQ_BUNDLE_DIR=/models/current ROUTEIQ_ENCODER_DIR=/models/encoder \
    ROUTEIQ_METRICS_PORT=9464
USER 10001
# 50051 gRPC (Route, grpc.health.v1, reflection); 9464 Prometheus /metrics.
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["python", "-m", "decision_service.probe", "127.0.0.1:50051"]
ENTRYPOINT ["routeiq-decision-service"]
