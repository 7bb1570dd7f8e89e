"""Real servers for integration tests: started as processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from decision_service.probe import wait_serving

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
            wait_serving(self.address, timeout_s, alive=lambda: self.process.poll() is None)
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
