"""Enabling the RouteIQ strategy in the LiteLLM proxy from its ``config.yaml``.

The proxy loads callbacks named by module path under ``litellm_settings.callbacks``; it has no
config key for a custom routing strategy (``router_settings.plugins`` only narrows candidates
by model name before cooldowns are applied). So this module's ``handler`` is a LiteLLM
callback that, before each request (``async_pre_call_hook``), installs the strategy on the
proxy's ``llm_router`` when it is not installed there yet (the proxy builds the router after
loading callbacks, and may rebuild it), and reports every outcome::

    litellm_settings:
      callbacks: ["gateway_client.proxy.handler"]

This is the hook every deployment ships (deploy/k8s/gateway and deploy/compose name it); the
gateway image installs this package, so LiteLLM imports it by that dotted path.

Settings come from ``ROUTEIQ_GATEWAY_*`` environment variables, read once when the proxy loads
this module (invalid ones stop the proxy at startup, naming the setting). With
``ROUTEIQ_GATEWAY_METRICS_PORT`` set, the process's Prometheus registry (the gateway client's
breaker, pick, fallback and latency metrics) is served on that port from then on, before the
first request: a scrape of an idle gateway still finds its metrics.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from .settings import GatewayClientSettings
from .strategy import RouteIQRoutingStrategy, install

logger = logging.getLogger(__name__)


def proxy_router() -> Any:
    """The proxy's current ``llm_router`` (None before the proxy has built it)."""
    from litellm.proxy import proxy_server

    return getattr(proxy_server, "llm_router", None)


def serve_metrics(port: int) -> Any:
    """Serve ``prometheus_client``'s default registry at ``:port/metrics`` on a daemon thread;
    the HTTP server, or None when the port cannot be bound (logged: the gateway keeps serving
    requests without its metrics endpoint)."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port)
    except OSError:
        logger.exception("could not serve RouteIQ gateway metrics on port %d", port)
        return None
    logger.info("RouteIQ gateway metrics on :%d/metrics", port)
    return server


class RouteIQProxyHandler(CustomLogger):
    """Installs the strategy on the proxy's router and forwards outcomes to its callback.

    ``settings`` default to the environment's. ``metrics_server`` is the HTTP server started
    for ``settings.metrics_port`` (None without one).
    """

    def __init__(self, settings: GatewayClientSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else GatewayClientSettings()
        self._lock = threading.Lock()
        self._router_ref: weakref.ref[Any] | None = None
        self.strategy: RouteIQRoutingStrategy | None = None
        port = self.settings.metrics_port
        self.metrics_server = serve_metrics(port) if port is not None else None

    def ensure_installed(self, router: Any = None) -> RouteIQRoutingStrategy | None:
        """Install the strategy on ``router`` (default: the proxy's) unless already there."""
        router = router if router is not None else proxy_router()
        if router is None:
            return None
        current = self._router_ref() if self._router_ref is not None else None
        if current is router and self.strategy is not None:
            return self.strategy
        with self._lock:
            current = self._router_ref() if self._router_ref is not None else None
            if current is not router or self.strategy is None:
                previous = self.strategy
                # Outcomes flow through this handler, which the proxy already calls.
                self.strategy = install(router, self.settings, outcomes=False)
                self._router_ref = weakref.ref(router)
                if previous is not None:
                    previous.close()
                logger.info(
                    "RouteIQ strategy installed on the proxy router (%s)", self.settings.target
                )
            return self.strategy

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        try:
            self.ensure_installed()
        except Exception:
            logger.exception("could not install the RouteIQ strategy; LiteLLM routes as configured")
        return data

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        if self.strategy is not None:
            self.strategy.outcome_callback.handle(kwargs, start_time, end_time, failed=False)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        if self.strategy is not None:
            self.strategy.outcome_callback.handle(kwargs, start_time, end_time, failed=True)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.log_success_event(kwargs, response_obj, start_time, end_time)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.log_failure_event(kwargs, response_obj, start_time, end_time)


handler = RouteIQProxyHandler()
"""The instance ``litellm_settings.callbacks`` names: ``gateway_client.proxy.handler``."""
