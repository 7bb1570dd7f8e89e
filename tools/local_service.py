"""Run the decision service as a local child process on loopback (demo, benchmarks, tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

import grpc

from decision_service.probe import wait_serving


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalService:
    """``python -m decision_service`` on 127.0.0.1; ``start`` returns once it is SERVING."""

    def __init__(
        self,
        bundle_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        output: IO[bytes] | None = None,
        port: int | None = None,
    ) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.args = args
        self.env = env or {}
        self.cwd = cwd
        self.output = output
        # An explicit port may already be served: gRPC binds with SO_REUSEPORT, so a second
        # process on it shares the listening port (the kernel spreads new connections).
        self.port = port if port is not None else free_loopback_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self, timeout_s: float = 120.0, credentials: grpc.ChannelCredentials | None = None
    ) -> LocalService:
        """Start the process and wait until it is SERVING (probed over TLS with ``credentials``)."""
        command = [
            sys.executable, "-m", "decision_service", "--bundle", str(self.bundle_dir),
            "--host", "127.0.0.1", "--port", str(self.port), *self.args,
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output is not None else None,
        )
        self.process = process
        try:
            wait_serving(
                self.address,
                timeout_s,
                alive=lambda: process.poll() is None,
                credentials=credentials,
            )
        except Exception:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (the service drains), wait, and return the exit code."""
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

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
