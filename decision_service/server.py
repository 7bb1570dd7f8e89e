"""The gRPC server: DecisionService, AdminService, grpc.health.v1 and server reflection.

Also owns what runs beside it: the bundle watcher, the Prometheus endpoint and tracing.

The concurrency model (docs/performance.md, "The serving concurrency model"): one
synchronous ``grpc.server`` whose pool thread runs each call start to finish, with no event
loop and no hop to a worker and back. Encoder runs are bounded by the runner's decide slots
(``workers``, one per core), and the pool has ``POOL_HEADROOM`` threads more than the
``max_in_flight`` calls that may hold or wait for a slot, so health checks, admin calls and
RESOURCE_EXHAUSTED refusals always find a free thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import filters, server_interceptor
from opentelemetry.trace import TracerProvider
from prometheus_client import start_http_server

from . import canary_control
from .admin import AdminOps
from .admin_servicer import (
    ADMIN_SERVICE,
    ADMIN_SERVICE_DESCRIPTOR,
    AdminServicer,
    AdminTokenInterceptor,
)
from .audit import AuditLog
from .boundary import ErrorBoundary, add_service
from .bundle import load_bundle
from .decide import Decider
from .domain import RequestLimits
from .embedding_front import EmbeddingFront
from .encoder import OnnxEncoder
from .metrics import ServiceMetrics
from .reload import Reloader, Watcher
from .runner import RouteRunner
from .servicer import DECISION_SERVICE, DECISION_SERVICE_DESCRIPTOR, DecisionServicer
from .settings import ServiceSettings
from .signing import SignaturePolicy, load_public_key
from .telemetry import configure_events, configure_tracing
from .versions import VersionRegistry

log = logging.getLogger(__name__)

# Pool threads beyond max_in_flight: never all waiting for a decide slot, so a probe, an
# admin call or a refusal is answered at once under any Route load.
POOL_HEADROOM = 8

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def signature_policy(settings: ServiceSettings) -> SignaturePolicy:
    key = (
        load_public_key(settings.bundle_public_key_file)
        if settings.bundle_public_key_file is not None
        else None
    )
    return SignaturePolicy(public_key=key, required=settings.require_signed_bundles)


def build_decider(settings: ServiceSettings) -> Decider:
    """Load encoder and bundle; raises EncoderRefused/BundleRefused with the reason."""
    encoder = OnnxEncoder(
        settings.resolved_encoder_dir(), intra_op_threads=settings.intra_op_threads
    )
    bundle = load_bundle(
        settings.bundle_dir,
        encoder,
        intra_op_threads=settings.intra_op_threads,
        signatures=signature_policy(settings),
    )
    registry = VersionRegistry(
        encoder,
        bundle,
        keep_versions=settings.keep_versions,
        static_order=settings.static_order,
        default_strategy=settings.default_strategy,
        strong_share=settings.strong_share,
    )
    if settings.traffic_split:
        registry.set_split(
            [(name, name, weight) for name, weight in settings.traffic_split.items()],
            settings.split_sticky_by,
        )
    return Decider(
        registry,
        EmbeddingFront(
            encoder,
            cache_size=settings.embedding_cache_size,
            max_batch=settings.encoder_batch_max,
            max_parallel=settings.encoder_parallel_runs,
        ),
        RequestLimits(
            max_prompt_chars=settings.max_prompt_chars, max_candidates=settings.max_candidates
        ),
        decision_delay_s=settings.debug_decision_delay_ms / 1e3,
        keep_embeddings=settings.telemetry_embedding,
        exploration_rate=settings.exploration_rate,
    )


def tracing_enabled(tracer_provider: TracerProvider | None) -> bool:
    """True when spans go somewhere: a provider was passed or one was set globally.

    Without one every span is a no-op, yet the server interceptor still costs ~0.6 ms of CPU a
    call here (context extraction, span objects, filters), measured as service CPU per call.
    """
    return tracer_provider is not None or not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    client_ca = (
        settings.tls_client_ca_file.read_bytes()
        if settings.tls_client_ca_file is not None
        else None
    )
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


class DecisionServer:
    """Owns the gRPC server, its thread pool, the watcher and the health status."""

    def __init__(
        self,
        settings: ServiceSettings,
        decider: Decider,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.decider = decider
        self.registry = decider.registry
        self.metrics = ServiceMetrics()
        self.metrics.watch_front(decider.front.stats)
        self.audit = AuditLog(settings.audit_log_path)
        configure_events(settings.telemetry_events_file, prompt_hash=settings.telemetry_prompt_hash)
        # Every call runs on one of these threads; at most max_in_flight of them hold or wait
        # for a decide slot (tests/integration/test_health_under_saturation.py).
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_in_flight + POOL_HEADROOM, thread_name_prefix="routeiq-grpc"
        )
        self.runner = RouteRunner(
            decider,
            self.metrics,
            workers=settings.workers,
            max_in_flight=settings.max_in_flight,
            min_deadline_s=settings.min_deadline_ms / 1e3,
        )
        self.reloader = Reloader(
            settings.bundle_dir,
            self.registry,
            decider.encoder,
            metrics=self.metrics,
            audit=self.audit,
            signatures=signature_policy(settings),
            intra_op_threads=settings.intra_op_threads,
        )
        self.canary = canary_control.from_settings(
            settings, self.registry, self.reloader, self.audit, self.metrics.registry
        )
        self.watcher = (
            Watcher(self.reloader, settings.reload_poll_ms / 1e3, self.canary)
            if settings.reload_poll_ms > 0
            else None
        )
        self.serving = False
        self.health = health.HealthServicer()
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        # The boundary is outside the token check, so it answers the check's refusals too.
        interceptors: list[grpc.ServerInterceptor] = [
            ErrorBoundary(self.metrics, (DECISION_SERVICE_DESCRIPTOR, ADMIN_SERVICE_DESCRIPTOR)),
            AdminTokenInterceptor(token),
        ]
        if tracing_enabled(tracer_provider):
            # Health probes every few seconds would drown the traces: not traced.
            interceptors.insert(
                0,
                server_interceptor(
                    tracer_provider=tracer_provider,
                    filter_=filters.negate(filters.health_check()),
                ),
            )
        self.server = grpc.server(
            self._pool,
            interceptors=interceptors,
            options=[
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", 5000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.max_receive_message_length", settings.max_message_bytes),
            ],
        )
        add_service(
            DECISION_SERVICE_DESCRIPTOR, DecisionServicer(self.runner, self.registry), self.server
        )
        ops = AdminOps(
            self.registry,
            self.reloader,
            self.audit,
            self.metrics,
            in_flight=lambda: self.runner.in_flight,
            serving=lambda: self.serving,
            decisions_total=lambda: decider.decisions_total,
        )
        add_service(ADMIN_SERVICE_DESCRIPTOR, AdminServicer(ops), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (DECISION_SERVICE, ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME),
            self.server,
        )
        address = f"{settings.host}:{settings.port}"
        credentials = server_credentials(settings)
        if credentials is not None:
            self.port = self.server.add_secure_port(address, credentials)
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind {address}")
        self._metrics_http: Any = None

    def start(self) -> None:
        if self.settings.metrics_port is not None:
            self._metrics_http, _ = start_http_server(
                self.settings.metrics_port,
                addr=self.settings.metrics_host,
                registry=self.metrics.registry,
            )
        self.server.start()
        bundle = self.registry.bundle
        if bundle is not None:
            self.metrics.set_active(bundle.version, bundle.strategy_name)
        self.serving = bundle is not None
        status = _SERVING if self.serving else _NOT_SERVING
        for service in ("", DECISION_SERVICE):
            self.health.set(service, status)
        if self.watcher is not None:
            self.watcher.start()
        log.info(
            "serving on %s:%d bundle=%s encoder=%s tls=%s admin=%s metrics_port=%s",
            self.settings.host,
            self.port,
            bundle.version if bundle else None,
            self.decider.encoder.identity.digest,
            self.settings.tls_cert_file is not None,
            "token" if self.settings.admin_token else "disabled",
            self.settings.metrics_port,
        )

    def stop(self) -> None:
        """Turn health NOT_SERVING, refuse new calls, let calls in flight finish, then close."""
        self.serving = False
        self.health.enter_graceful_shutdown()
        if self.watcher is not None:
            self.watcher.stop()
        self.server.stop(self.settings.shutdown_grace_s).wait()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
        log.info("stopped")


def serve(settings: ServiceSettings) -> None:
    decider = build_decider(settings)
    provider = configure_tracing()
    server = DecisionServer(settings, decider, tracer_provider=provider)
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("signal received: draining for up to %.1fs", settings.shutdown_grace_s)
    server.stop()
    if provider is not None:
        provider.shutdown()  # flush the last spans
