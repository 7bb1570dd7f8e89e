"""Enable the RouteIQ routing strategy inside a LiteLLM proxy.

LiteLLM's proxy builds its Router from config.yaml and gives no setting for a custom
strategy, so this callback installs ``gateway_client`` on the proxy's router before the
first request (and again if a config reload replaces the router). List it in config.yaml:

    litellm_settings:
      callbacks: routeiq_proxy_hook.proxy_handler_instance

Settings come from ROUTEIQ_GATEWAY_* (gateway_client.settings). When
ROUTEIQ_GATEWAY_METRICS_PORT is set, the process's Prometheus registry (the gateway
client's breaker, fallback and latency metrics) is served on that port.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

log = logging.getLogger("routeiq.proxy_hook")


class RouteIQProxyHook(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._router_id: int | None = None
        self._strategy: Any = None
        port = os.environ.get("ROUTEIQ_GATEWAY_METRICS_PORT")
        if port:
            from prometheus_client import start_http_server

            start_http_server(int(port))
            log.info("gateway metrics on :%s/metrics", port)

    def ensure_installed(self) -> None:
        from litellm.proxy import proxy_server

        router = getattr(proxy_server, "llm_router", None)
        if router is None or id(router) == self._router_id:
            return
        with self._lock:
            if id(router) == self._router_id:
                return
            from gateway_client import GatewayClientSettings, install

            if self._strategy is not None:
                self._strategy.close()
            self._strategy = install(router, GatewayClientSettings())
            self._router_id = id(router)
            log.info("RouteIQ strategy installed (target %s)", self._strategy.settings.target)

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any
    ) -> dict:
        self.ensure_installed()
        return data


proxy_handler_instance = RouteIQProxyHook()
