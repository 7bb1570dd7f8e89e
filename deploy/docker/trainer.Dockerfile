# Trainer image: training, ONNX export, and the registry commands (publish/promote/rollback/
# pull/versions): the training CronJob and the compose registry seed. CPU-only torch. Pods
# never sync with it: the sync agent runs in the serving image. Build from the repo root:
#   docker build -f deploy/docker/trainer.Dockerfile -t routeiq/trainer .
FROM python:3.11-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them. CPU wheels of torch keep
# the image ~1 GB smaller than the default CUDA build.
COPY pyproject.toml constraints.txt README.md LICENSE ./
RUN python -m venv /opt/venv \
 && mkdir -p decision_service gateway_client trainer \
 && touch decision_service/__init__.py gateway_client/__init__.py trainer/__init__.py \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt \
      --extra-index-url https://download.pytorch.org/whl/cpu '.[trainer]' \
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
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
USER 10001
WORKDIR /work
# No server here: "healthy" means the package imports and its CLI answers.
HEALTHCHECK --interval=60s --timeout=30s --start-period=60s \
  CMD ["routeiq-trainer", "--help"]
ENTRYPOINT ["routeiq-trainer"]
# Without a command the image prints the commands; jobs pass their own (compose, CronJob).
CMD ["--help"]
