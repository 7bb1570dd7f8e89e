"""The RouteIQ strategy in the real LiteLLM proxy, over HTTP, from the config files deploy/ ships.

The proxy runs from ``.venv-proxy`` (``make proxy-venv``: ``litellm[proxy]`` pins versions the
main venv does not use, and this repo is installed there as the gateway image installs it).
Each proxy loads a shipped config file as it is, by path; the tests write no config and only set
environment variables:

- ``deploy/k8s/gateway/config.yaml`` (real ``openai/`` deployments): ``OPENAI_API_KEY`` and
  ``OPENAI_BASE_URL``, which LiteLLM's OpenAI provider reads, point it at a loopback stand-in
  for the OpenAI API that answers with the model it was asked for; ``ROUTEIQ_GATEWAY_*`` point
  the hook at the decision service and open its metrics port.
- ``deploy/compose/litellm-config.yaml`` (mock deployments): the hook points at an address
  where nothing listens, so every pick is the static fallback's.

Skipped when ``.venv-proxy`` is absent, except under ``CI=true`` where it must exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_client import DecisionClient
from gateway_client.prices import price_function
from gateway_client.request import candidate_for
from routeiq.decision.v1 import decision_pb2

from .servers import REPO, DecisionServiceProcess, free_port, metric_value, metrics_text

pytestmark = pytest.mark.integration

PROXY_BIN = REPO / ".venv-proxy" / "bin" / "litellm"
K8S_CONFIG = REPO / "deploy" / "k8s" / "gateway" / "config.yaml"
COMPOSE_CONFIG = REPO / "deploy" / "compose" / "litellm-config.yaml"
MASTER_KEY = "sk-routeiq-test"
OPENAI_KEY = "sk-upstream-test"
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


def _model_list(config: Path) -> list[dict[str, Any]]:
    deployments: list[dict[str, Any]] = yaml.safe_load(config.read_text())["model_list"]
    return deployments


class FakeOpenAI:
    """A loopback stand-in for the OpenAI chat completions API: answers ``from <model>`` and
    remembers each request's model and Authorization header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model = str(body.get("model"))
                outer.requests.append((model, self.headers.get("Authorization", "")))
                reply = json.dumps(
                    {
                        "id": f"chatcmpl-{len(outer.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": f"from {model}"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ProxyProcess:
    """``litellm --config <shipped file>`` on a free loopback port, configured by ``env``."""

    def __init__(self, tmp: Path, config: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.log_path = tmp / f"proxy-{self.port}.log"
        self.env = {
            **os.environ,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "ROUTEIQ_GATEWAY_FALLBACK_POLICY": "ordered",
            **env,
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

    def chat(self, prompt: str, metadata: dict[str, Any] | None = None) -> tuple[str, str]:
        """(served deployment id from ``x-litellm-model-id``, reply text)."""
        payload = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
        if metadata is not None:
            payload["metadata"] = metadata
        body = json.dumps(payload)
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
def upstream() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def k8s_proxy(
    decision_server: DecisionServiceProcess,
    upstream: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    """The production gateway config, routed by the decision service."""
    _require_proxy()
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
        "ROUTEIQ_GATEWAY_TARGET": decision_server.address,
        "ROUTEIQ_GATEWAY_DEADLINE_MS": "2000",  # a cold service embeds its first prompt slowly
        "ROUTEIQ_GATEWAY_METRICS_PORT": str(free_port()),
    }
    server = ProxyProcess(tmp_path_factory.mktemp("proxy"), K8S_CONFIG, env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def compose_proxy_without_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    """The compose stack's gateway config, with nothing listening at the service's address."""
    _require_proxy()
    env = {
        "ROUTEIQ_GATEWAY_TARGET": f"127.0.0.1:{free_port()}",
        "ROUTEIQ_GATEWAY_BREAKER_FAILURE_THRESHOLD": "2",
    }
    server = ProxyProcess(tmp_path_factory.mktemp("proxy-dead"), COMPOSE_CONFIG, env).start()
    try:
        yield server
    finally:
        server.stop()


def test_the_shipped_gateway_config_serves_the_services_top_ranked_deployment(
    k8s_proxy: ProxyProcess, decision_server: DecisionServiceProcess, upstream: FakeOpenAI
) -> None:
    metrics_port = int(k8s_proxy.env["ROUTEIQ_GATEWAY_METRICS_PORT"])
    # Served from proxy startup, before any request.
    assert metric_value(metrics_text(metrics_port), "routeiq_gateway_picks_total") == 0

    deployments = _model_list(K8S_CONFIG)
    models = {d["model_info"]["id"]: d["litellm_params"]["model"] for d in deployments}
    # Priced as the gateway prices them: the config sets no prices, LiteLLM's catalogue does.
    candidates = [
        c for c in (candidate_for(d, price_function(True)) for d in deployments) if c is not None
    ]
    assert len(candidates) == len(deployments) >= 2
    tops = []
    with DecisionClient(decision_server.address) as client:
        for prompt in PROMPTS:
            served, text = k8s_proxy.chat(prompt)
            request = decision_pb2.RouteRequest(
                prompt=prompt, candidates=candidates, requested_model="auto"
            )
            top = client.route(request, timeout_s=10.0).ranked[0].id
            assert served == top, k8s_proxy.log()
            # The provider really called was that deployment's, with the key the config reads.
            model = models[top].removeprefix("openai/")
            assert text == f"from {model}"
            assert upstream.requests[-1] == (model, f"Bearer {OPENAI_KEY}")
            tops.append(top)
    print("proxy routed to:", tops)

    # Every pick was the service's, none the fallback's.
    text = metrics_text(metrics_port)
    assert metric_value(text, "routeiq_gateway_picks_total", reason="routed") == len(PROMPTS)
    assert metric_value(text, "routeiq_gateway_fallbacks_total") == 0


def test_a_requests_cost_weight_changes_the_services_choice_through_the_proxy(
    k8s_proxy: ProxyProcess, upstream: FakeOpenAI
) -> None:
    # gpt-4o is the better model at maths in the test bundle, and about 17 times the price of
    # gpt-4o-mini in LiteLLM's catalogue: quality alone takes it, full price sensitivity not.
    prompt = PROMPTS[0]
    picks = {
        weight: k8s_proxy.chat(prompt, {"routeiq": {"cost_weight": weight}})[0]
        for weight in (0.0, 1.0)
    }
    bad, _ = k8s_proxy.chat(prompt, {"routeiq": {"cost_weight": "lots"}})  # ignored, routed
    print("proxy picks by request cost_weight:", picks, "| invalid ->", bad)
    assert picks == {0.0: "gpt-4o", 1.0: "gpt-4o-mini"}
    assert upstream.requests[-2][0] == "gpt-4o-mini"  # the cheap pick really served it
    metrics_port = int(k8s_proxy.env["ROUTEIQ_GATEWAY_METRICS_PORT"])
    text = metrics_text(metrics_port)
    assert metric_value(text, "routeiq_gateway_cost_weight_ignored_total", source="request") == 1
    assert metric_value(text, "routeiq_gateway_fallbacks_total") == 0


def test_the_shipped_compose_config_falls_back_when_the_service_is_down(
    compose_proxy_without_service: ProxyProcess,
) -> None:
    # Ordered fallback: the group's first deployment, for every request, before and after the
    # breaker opens (threshold 2).
    first = _model_list(COMPOSE_CONFIG)[0]
    for prompt in PROMPTS * 2:
        served, text = compose_proxy_without_service.chat(prompt)
        assert served == first["model_info"]["id"]
        assert text == first["litellm_params"]["mock_response"]
