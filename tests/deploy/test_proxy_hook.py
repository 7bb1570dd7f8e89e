"""The LiteLLM proxy hook the shipped configs name: ``gateway_client.proxy.handler``, imported from
the installed package (deploy/ holds no Python). It installs the RouteIQ strategy on the proxy's
router, once per router object, and serves the gateway metrics when
``ROUTEIQ_GATEWAY_METRICS_PORT`` is set. No proxy server is started and no socket is opened: a
stand-in ``litellm.proxy.proxy_server`` module holds a real ``litellm.Router``."""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOY, K8S, REPO

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

CONFIGS = {
    "k8s": K8S / "gateway" / "config.yaml",
    "compose": DEPLOY / "compose" / "litellm-config.yaml",
}


@pytest.fixture(autouse=True)
def no_metrics_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing gateway_client.proxy builds its handler from the environment: open no socket.
    monkeypatch.delenv("ROUTEIQ_GATEWAY_METRICS_PORT", raising=False)


def _router() -> object:
    import litellm

    return litellm.Router(
        model_list=[
            {
                "model_name": "auto",
                "litellm_params": {"model": f"openai/{name}", "mock_response": "ok"},
                "model_info": {"id": name},
            }
            for name in ("gpt-4o", "gpt-4o-mini")
        ]
    )


@pytest.mark.parametrize("config_path", CONFIGS.values(), ids=CONFIGS.keys())
def test_the_shipped_configs_resolve_to_the_packaged_hook(config_path: Path) -> None:
    from litellm.proxy.types_utils.utils import get_instance_fn

    import gateway_client.proxy

    config = yaml.safe_load(config_path.read_text())
    callback, otel = config["litellm_settings"]["callbacks"]
    assert otel == "otel"  # LiteLLM's OpenTelemetry callback
    # LiteLLM's own resolution: a file beside the config would win over the package.
    resolved = get_instance_fn(callback, config_file_path=str(config_path))
    assert resolved is gateway_client.proxy.handler


def test_deploy_holds_no_python() -> None:
    assert [p.relative_to(REPO) for p in DEPLOY.rglob("*.py")] == []


def test_the_gateway_image_installs_the_hook_and_copies_no_hook_file() -> None:
    text = re.sub(r"\\\n", " ", (DEPLOY / "docker" / "litellm-gateway.Dockerfile").read_text())
    steps = [line.split(None, 1) for line in text.splitlines() if line.strip()]
    steps = [s for s in steps if not s[0].startswith("#") and len(s) == 2]
    installs = " ".join(arg for op, arg in steps if op == "RUN" and "pip install" in arg)
    assert "'.[gateway]'" in installs and "'litellm[proxy]" in installs
    copied = [arg.split()[0] for op, arg in steps if op == "COPY" and "--from=" not in arg]
    # The hook's imports: the gateway client and the wire contract it speaks.
    assert {"gateway_client", "routeiq"} <= set(copied)
    assert not [src for src in copied if src.endswith(".py")]


@pytest.fixture
def proxy_server(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in for ``litellm.proxy.proxy_server`` with no router yet."""
    module = types.ModuleType("litellm.proxy.proxy_server")
    module.llm_router = None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm.proxy.proxy_server", module)
    import litellm.proxy

    monkeypatch.setattr(litellm.proxy, "proxy_server", module, raising=False)
    return module


async def test_hook_installs_the_strategy_on_the_proxy_router(
    proxy_server: types.ModuleType,
) -> None:
    from gateway_client.proxy import RouteIQProxyHandler
    from gateway_client.settings import GatewayClientSettings
    from gateway_client.strategy import RouteIQRoutingStrategy

    hook = RouteIQProxyHandler(GatewayClientSettings(target="127.0.0.1:1"))
    data = {"model": "auto"}

    assert await hook.async_pre_call_hook(None, None, data, "completion") is data
    assert hook.strategy is None  # no router yet: nothing to do

    first = _router()
    proxy_server.llm_router = first  # type: ignore[attr-defined]
    await hook.async_pre_call_hook(None, None, data, "completion")
    strategy = hook.strategy
    assert isinstance(strategy, RouteIQRoutingStrategy) and strategy.router is first
    assert strategy.settings is hook.settings
    await hook.async_pre_call_hook(None, None, data, "completion")
    assert hook.strategy is strategy  # once per router

    second = _router()  # a config reload builds a new router
    proxy_server.llm_router = second  # type: ignore[attr-defined]
    await hook.async_pre_call_hook(None, None, data, "completion")
    assert hook.strategy is not strategy and hook.strategy is not None
    assert hook.strategy.router is second
    hook.strategy.close()


def test_the_metrics_port_comes_from_the_environment_and_is_served_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prometheus_client

    from gateway_client.proxy import RouteIQProxyHandler

    started: list[int] = []

    def start_http_server(port: int) -> tuple[str, None]:
        started.append(port)
        return "server", None

    monkeypatch.setattr(prometheus_client, "start_http_server", start_http_server)
    assert RouteIQProxyHandler().metrics_server is None and started == []

    monkeypatch.setenv("ROUTEIQ_GATEWAY_METRICS_PORT", "9465")
    hook = RouteIQProxyHandler()
    assert started == [9465] and hook.metrics_server == "server"
    assert hook.settings.metrics_port == 9465


def test_a_metrics_port_in_use_does_not_stop_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    import prometheus_client

    from gateway_client.proxy import RouteIQProxyHandler
    from gateway_client.settings import GatewayClientSettings

    def in_use(port: int) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(prometheus_client, "start_http_server", in_use)
    hook = RouteIQProxyHandler(GatewayClientSettings(metrics_port=9465))
    assert hook.metrics_server is None
