"""A grpc.health.v1 probe: ``python -m decision_service.probe [ADDRESS]`` exits 0 when SERVING.

Container health checks, the demo and the integration tests use this one implementation.
"""

from __future__ import annotations

import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def check(
    address: str,
    service: str = "",
    timeout_s: float = 1.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> int:
    """The health status of ``service`` at ``address`` (raises grpc.RpcError when unreachable).

    Plaintext unless ``credentials`` are given (a TLS server).
    """
    channel = (
        grpc.insecure_channel(address)
        if credentials is None
        else grpc.secure_channel(address, credentials)
    )
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
        )
    return int(reply.status)


def wait_serving(
    address: str,
    timeout_s: float = 60.0,
    alive: object = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Block until ``address`` reports SERVING; ``alive()`` returning False aborts early."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise RuntimeError(f"the server for {address} exited before serving")
        try:
            if check(address, credentials=credentials) == SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{address} did not become SERVING within {timeout_s:.0f}s")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    address = args[0] if args else "127.0.0.1:50051"
    try:
        status = check(address, timeout_s=2.0)
    except grpc.RpcError as exc:
        print(f"{address}: unreachable ({exc.code().name})", file=sys.stderr)
        return 1
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    print(f"{address}: {name}")
    return 0 if status == SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
