"""Real servers for integration tests: started as processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_serving(address: str, timeout_s: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Block until grpc.health.v1 reports SERVING at ``address``."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before serving")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{address} did not become SERVING within {timeout_s}s")


class DecisionServiceProcess:
    """``python -m decision_service`` on a loopback port; stop and start again on the same port."""

    def __init__(self, bundle_dir: Path, encoder_dir: Path, *extra_args: str, **env: str) -> None:
        self.bundle_dir = bundle_dir
        self.encoder_dir = encoder_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"routeiq-service-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> DecisionServiceProcess:
        cmd = [
            sys.executable,
            "-m",
            "decision_service",
            "--bundle",
            str(self.bundle_dir),
            "--encoder",
            str(self.encoder_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        try:
            wait_serving(self.address, timeout_s, self.process)
        except Exception:
            self.stop()
            raise RuntimeError(f"decision service failed to start:\n{self.log()}") from None
        return self

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> DecisionServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
