"""The LiteLLM proxy hook (deploy/k8s/gateway/routeiq_proxy_hook.py) installs the RouteIQ
strategy on the proxy's router, once per router object. No proxy server is started: a
stand-in ``litellm.proxy.proxy_server`` module holds a real ``litellm.Router``."""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import pytest

from .conftest import K8S

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


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


@pytest.fixture
def hook_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    monkeypatch.delenv("ROUTEIQ_GATEWAY_METRICS_PORT", raising=False)  # no socket
    spec = importlib.util.spec_from_file_location(
        "routeiq_proxy_hook", K8S / "gateway" / "routeiq_proxy_hook.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_hook_installs_the_strategy_on_the_proxy_router(
    hook_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway_client.strategy import RouteIQRoutingStrategy

    proxy_server = types.ModuleType("litellm.proxy.proxy_server")
    proxy_server.llm_router = None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm.proxy.proxy_server", proxy_server)
    import litellm.proxy

    monkeypatch.setattr(litellm.proxy, "proxy_server", proxy_server, raising=False)
    hook = hook_module.proxy_handler_instance
    data = {"model": "auto"}

    assert await hook.async_pre_call_hook(None, None, data, "completion") is data
    assert hook._strategy is None  # no router yet: nothing to do

    first = _router()
    proxy_server.llm_router = first  # type: ignore[attr-defined]
    await hook.async_pre_call_hook(None, None, data, "completion")
    strategy = hook._strategy
    assert isinstance(strategy, RouteIQRoutingStrategy) and strategy.router is first
    await hook.async_pre_call_hook(None, None, data, "completion")
    assert hook._strategy is strategy  # once per router

    second = _router()  # a config reload builds a new router
    proxy_server.llm_router = second  # type: ignore[attr-defined]
    await hook.async_pre_call_hook(None, None, data, "completion")
    assert hook._strategy is not strategy and hook._strategy.router is second
    hook._strategy.close()
