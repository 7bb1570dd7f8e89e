"""The sync ``grpc.server`` alternative, for measurement only (not shipped).

    python -m tools.bench.sync_prototype --bundle DIR --encoder DIR --port N [--pool 4]

Route and grpc.health.v1 on one synchronous ``grpc.server`` whose thread pool runs every
call start to finish (``Decider.decide``: no event loop, no hop to a worker). It has none of
the shipped server's interceptors (error boundary, admin token, tracing), no AdminService,
no admission control beyond ``maximum_concurrent_rpcs``, and health shares the pool with
Route. With ``--pool`` above ``--decide-slots`` (decisions at once), threads stay free for
health: the probe-safe sync design, short of its interceptors.
``tools.bench.concurrency_model`` runs it beside the shipped aio server.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from decision_service.convert import decision_to_proto, query_from_proto
from decision_service.server import build_decider
from decision_service.settings import ServiceSettings
from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc


class SyncDecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, settings: ServiceSettings, decide_slots: int) -> None:
        self.decider = build_decider(settings)
        # At most this many decisions run at once; the rest of the pool waits here (or
        # answers health), so a pool larger than the slots keeps threads free for probes.
        self.slots = threading.BoundedSemaphore(decide_slots)

    def Route(self, request: pb.RouteRequest, context: grpc.ServicerContext) -> pb.RouteResponse:
        query = query_from_proto(request)
        with self.slots:
            decision = self.decider.decide(query)
        return decision_to_proto(decision)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--encoder", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", type=int, default=4, help="threads of the server's pool")
    parser.add_argument("--max-rpcs", type=int, default=64, help="maximum_concurrent_rpcs")
    parser.add_argument("--decide-slots", type=int, default=0, help="0: as many as the pool")
    args = parser.parse_args()
    settings = ServiceSettings(bundle_dir=args.bundle, encoder_dir=args.encoder)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=args.pool), maximum_concurrent_rpcs=args.max_rpcs
    )
    pb_grpc.add_DecisionServiceServicer_to_server(
        SyncDecisionServicer(settings, args.decide_slots or args.pool), server
    )
    checker = health.HealthServicer()
    checker.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(2).wait()


if __name__ == "__main__":
    main()
