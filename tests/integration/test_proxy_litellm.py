"""The RouteIQ strategy in the real LiteLLM proxy, over HTTP.

The proxy runs from ``.venv-proxy`` (``make proxy-venv``: ``litellm[proxy]`` pins versions the
main venv does not use), started from a config.yaml that names ``gateway_client.proxy.handler``.
Skipped when that venv is absent, except under ``CI=true`` where it must exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_client import DecisionClient
from gateway_client.request import candidate_for
from routeiq.decision.v1 import decision_pb2

from .deployments import GROUP, IDS
from .deployments import MODEL_LIST as DEPLOYMENTS
from .servers import REPO, DecisionServiceProcess, free_port

pytestmark = pytest.mark.integration

PROXY_BIN = REPO / ".venv-proxy" / "bin" / "litellm"
MASTER_KEY = "sk-routeiq-test"
PROMPTS = [
    "Prove that there are infinitely many primes.",
    "hey! how's it going today?",
    "Write a Python function that checks whether a string is a palindrome.",
    "Translate into French: 'The meeting has been moved to Thursday morning.'",
]


def _require_proxy() -> None:
    if PROXY_BIN.exists():
        return
    message = f"{PROXY_BIN} is missing: run `make proxy-venv`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class ProxyProcess:
    """``litellm --config`` on a free loopback port, with the RouteIQ handler configured."""

    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp / "config.yaml"
        config = {
            "model_list": DEPLOYMENTS,
            "litellm_settings": {"callbacks": ["gateway_client.proxy.handler"]},
            "router_settings": {"num_retries": 0},
        }
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.log_path = tmp / f"proxy-{self.port}.log"
        self.env = {
            **os.environ,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "ROUTEIQ_GATEWAY_TARGET": target,
            "ROUTEIQ_GATEWAY_DEADLINE_MS": "2000",  # a cold service embeds its first prompt slowly
            "ROUTEIQ_GATEWAY_BREAKER_FAILURE_THRESHOLD": "2",
            "ROUTEIQ_GATEWAY_FALLBACK_POLICY": "ordered",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 180.0) -> ProxyProcess:
        cmd = [str(PROXY_BIN), "--config", str(self.config), "--host", "127.0.0.1",
               "--port", str(self.port)]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the proxy exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not start in {timeout_s} s:\n{self.log()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def chat(self, prompt: str) -> tuple[str, str]:
        """(served deployment id from ``x-litellm-model-id``, reply text)."""
        body = json.dumps({"model": GROUP, "messages": [{"role": "user", "content": prompt}]})
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=body.encode(),
            headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.status == 200
            payload: dict[str, Any] = json.loads(reply.read())
            return reply.headers["x-litellm-model-id"], payload["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def proxy(
    decision_server: DecisionServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    _require_proxy()
    server = ProxyProcess(tmp_path_factory.mktemp("proxy"), decision_server.address).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dead_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """A proxy whose decision service address has nothing listening."""
    _require_proxy()
    server = ProxyProcess(tmp_path_factory.mktemp("proxy-dead"), f"127.0.0.1:{free_port()}").start()
    try:
        yield server
    finally:
        server.stop()


def test_proxy_serves_the_services_top_ranked_deployment(
    proxy: ProxyProcess, decision_server: DecisionServiceProcess
) -> None:
    candidates = [c for c in (candidate_for(d) for d in DEPLOYMENTS) if c is not None]
    tops = []
    with DecisionClient(decision_server.address) as client:
        for prompt in PROMPTS:
            served, text = proxy.chat(prompt)
            request = decision_pb2.RouteRequest(
                prompt=prompt, candidates=candidates, requested_model=GROUP
            )
            top = client.route(request, timeout_s=10.0).ranked[0].id
            assert served == top, proxy.log()
            assert text == f"from {top}"
            tops.append(top)
    print("proxy routed to:", tops)


def test_proxy_falls_back_when_the_service_is_down(dead_proxy: ProxyProcess) -> None:
    # Ordered fallback: the group's first deployment, for every request, before and after the
    # breaker opens (threshold 2).
    for prompt in PROMPTS * 2:
        served, text = dead_proxy.chat(prompt)
        assert served == IDS[0]
        assert text == f"from {IDS[0]}"
