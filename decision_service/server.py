"""The gRPC server: DecisionService plus grpc.health.v1 and server reflection."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import grpc

# grpc_health exposes the asyncio servicer only as the private module behind `health.aio`.
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .api.v1 import decision_pb2 as pb
from .api.v1 import decision_pb2_grpc as pb_grpc
from .bundle import load_bundle
from .encoder import OnnxEncoder
from .engine import DecisionEngine, RequestLimits
from .servicer import DecisionServicer
from .settings import ServiceSettings

log = logging.getLogger(__name__)

DECISION_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def build_engine(settings: ServiceSettings) -> DecisionEngine:
    """Load encoder and bundle; raises EncoderRefused/BundleRefused with the reason."""
    encoder = OnnxEncoder(
        settings.resolved_encoder_dir(), intra_op_threads=settings.intra_op_threads
    )
    bundle = load_bundle(settings.bundle_dir, encoder, intra_op_threads=settings.intra_op_threads)
    limits = RequestLimits(
        max_prompt_chars=settings.max_prompt_chars, max_candidates=settings.max_candidates
    )
    return DecisionEngine(encoder, bundle, limits)


class DecisionServer:
    """Owns the grpc.aio server, its worker threads and the health status."""

    def __init__(self, settings: ServiceSettings, engine: DecisionEngine) -> None:
        self.settings = settings
        self.engine = engine
        self._executor = ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="routeiq-decide"
        )
        self.health = health_aio.HealthServicer()
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", 5000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ]
        )
        pb_grpc.add_DecisionServiceServicer_to_server(
            DecisionServicer(engine, self._executor), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (DECISION_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.port}")
        if self.port == 0:
            raise OSError(f"cannot bind {settings.host}:{settings.port}")

    async def start(self) -> None:
        await self.server.start()
        status = _SERVING if self.engine.bundle is not None else _NOT_SERVING
        for service in ("", DECISION_SERVICE):
            await self.health.set(service, status)
        bundle = self.engine.bundle
        log.info(
            "serving on %s:%d bundle=%s encoder=%s",
            self.settings.host,
            self.port,
            bundle.version if bundle else None,
            self.engine.encoder.identity.digest,
        )

    async def stop(self) -> None:
        """Turn health NOT_SERVING, refuse new calls, let calls in flight finish, then close."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.shutdown_grace_s)
        self._executor.shutdown(wait=True, cancel_futures=True)
        log.info("stopped")


async def serve(settings: ServiceSettings) -> None:
    engine = build_engine(settings)
    server = DecisionServer(settings, engine)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("signal received: draining for up to %.1fs", settings.shutdown_grace_s)
    await server.stop()
