"""Servers and processes for the fleet tests: S3 (moto) that counts downloads, sync agents.

``CountingS3`` is moto's S3 server on loopback behind a WSGI wrapper that counts the agents
with a GET of a registry artifact (``/versions/`` and ``/encoders/`` keys) in flight at
once, each agent named by the ``routeiq-sync/<id>`` its S3 client sends in its user agent:
the concurrency the store itself sees, measured independently of the agents' leases. Each
such GET is held ``latency_s`` first, as a remote store would, so downloads that the leases
failed to serialise would overlap visibly. ``stop`` is a real outage: the listening socket
closes and every kept-alive connection is cut, so clients get refused connections.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

REPO = Path(__file__).resolve().parents[2]
_AGENT = re.compile(r"routeiq-sync/(\S+)")


class _Tracked(MotoRequestHandler):
    """Remembers its connection so an outage can cut kept-alive clients too."""

    connections: set[socket.socket]
    guard: threading.Lock

    def setup(self) -> None:
        super().setup()
        with self.guard:
            self.connections.add(self.connection)

    def finish(self) -> None:
        with self.guard:
            self.connections.discard(self.connection)
        super().finish()


class _Body:
    """The app's response iterable; the GET stops counting once its last byte is written.

    werkzeug writes each chunk before asking for the next, so the end of iteration is the
    moment the whole body has been handed to the socket: the tightest server-side end of a
    download (``close`` comes later, after bookkeeping that can wait for the GIL).
    """

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done = done
        self._finished = False

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._done()

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        finally:
            self._finish()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()


class CountingS3:
    def __init__(self, *, latency_s: float = 0.02) -> None:
        self.latency_s = latency_s
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._guard = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.gets: Counter[str] = Counter()  # "bundle" / "encoder" -> agents' artifact GETs
        self._active: dict[int, tuple[str, str]] = {}  # request -> (agent, path)
        self.busiest: list[str] = []  # the artifact GETs in flight when the most were
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._handler = type(
            "Handler", (_Tracked,), {"connections": set(), "guard": threading.Lock()}
        )

    def reset_counts(self) -> None:
        with self._guard:
            self.most_in_flight = self.in_flight
            self.busiest = sorted(f"{h} {p}" for h, p in self._active.values())
            self.gets.clear()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        kind = "encoder" if "/encoders/" in path else "bundle" if "/versions/" in path else None
        if environ.get("REQUEST_METHOD") != "GET" or kind is None:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        token = id(environ)
        # One agent's GETs are sequential; the server may still be finishing its previous
        # one (GIL) when the next arrives, so in-flight downloads are counted per agent.
        agent = _AGENT.search(environ.get("HTTP_USER_AGENT", ""))
        if agent is None:  # the publisher reading manifests and metrics, not a sync agent
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        holder = agent.group(1)
        with self._guard:
            self._active[token] = (holder, path)
            self.in_flight = len({h for h, _ in self._active.values()})
            if self.in_flight > self.most_in_flight:
                self.most_in_flight = self.in_flight
                self.busiest = sorted(f"{h} {p}" for h, p in self._active.values())
            self.gets[kind] += 1

        def done() -> None:
            with self._guard:
                self._active.pop(token, None)
                self.in_flight = len({h for h, _ in self._active.values()})

        try:
            time.sleep(self.latency_s)
            body = self._app(environ, start_response)
        except BaseException:
            done()
            raise
        return _Body(body, done)

    def start(self) -> CountingS3:
        self._server = make_server(
            "127.0.0.1", self.port, self._wsgi, threaded=True, request_handler=self._handler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and cut open connections: what a crashed endpoint looks like."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        with self._handler.guard:
            for connection in list(self._handler.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Agents:
    """A process running sync agents: ``python -m decision_service.sync`` (or the
    ``routeiq-sync-agent`` script) for one, or ``python -m tests.integration.fleet_agents``
    for several threads (the environment configures them).
    """

    def __init__(
        self, log_path: Path, env: dict[str, str], count: int = 1, *, script: bool = False
    ) -> None:
        module = "decision_service.sync" if count == 1 else "tests.integration.fleet_agents"
        self.command = [sys.executable, "-m", module]
        if script:  # the installed console script (pyproject's [project.scripts])
            self.command = [str(Path(sys.executable).parent / "routeiq-sync-agent")]
        if count > 1:
            self.command += ["--count", str(count)]
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Agents:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.02
) -> None:
    """Liveness wait: raises with ``what`` when ``check`` is still false after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)
