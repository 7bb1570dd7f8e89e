"""One trace from the LiteLLM proxy to the decision service, as the shipped configs set it up.

The real proxy (``.venv-proxy``) loads ``deploy/k8s/gateway/config.yaml`` as shipped (callbacks
``gateway_client.proxy.handler`` and LiteLLM's ``otel``) with the OTEL_* variables the k8s
manifest sets, pointed at an OTLP receiver this test runs; a real decision service process
exports there too. One chat completion must give one trace: the gateway's ``routeiq.route``
span, and the service's Route server span as its child, each with its side's
``service.name``/``service.version`` resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from .otlp_receiver import OtlpReceiver, ReceivedSpan
from .servers import DecisionServiceProcess, free_port
from .test_proxy_litellm import (
    K8S_CONFIG,
    OPENAI_KEY,
    PROMPTS,
    FakeOpenAI,
    ProxyProcess,
    _model_list,
    _require_proxy,
)

pytestmark = pytest.mark.integration

ROUTE_METHOD = "/routeiq.decision.v1.DecisionService/Route"
HTTP_SPAN = "POST /v1/chat/completions"  # the proxy's server span (FastAPI instrumentation)
# Exported within a fraction of a second rather than the SDK's default 5 s batch delay.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


def _gateway_env() -> dict[str, str]:
    """The OTEL_* variables of deploy/k8s/gateway/litellm-proxy.yaml, endpoint aside."""
    import yaml

    manifest = Path(K8S_CONFIG).with_name("litellm-proxy.yaml")
    deployment = next(
        d for d in yaml.safe_load_all(manifest.read_text()) if d["kind"] == "Deployment"
    )
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if e["name"].startswith("OTEL_") and "value" in e}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def traced_proxy(
    receiver: OtlpReceiver,
    knn_bundle_dir: Path,
    encoder_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    _require_proxy()
    endpoint = f"http://{receiver.address}"
    service = DecisionServiceProcess(
        knn_bundle_dir, encoder_dir, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **FAST_EXPORT
    ).start()
    upstream = FakeOpenAI()
    env = {
        **_gateway_env(),
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        **FAST_EXPORT,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
        "ROUTEIQ_GATEWAY_TARGET": service.address,
        "ROUTEIQ_GATEWAY_DEADLINE_MS": "2000",  # a cold service embeds its first prompt slowly
        "ROUTEIQ_GATEWAY_METRICS_PORT": str(free_port()),
    }
    proxy = ProxyProcess(tmp_path_factory.mktemp("proxy-otel"), K8S_CONFIG, env)
    try:
        yield proxy.start()
    finally:
        proxy.stop()
        upstream.close()
        service.stop()


def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted({s.name for s in spans}))
    return found[0]


def test_one_trace_spans_the_gateway_request_and_the_route_call(
    traced_proxy: ProxyProcess, receiver: OtlpReceiver
) -> None:
    assert _gateway_env()["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] == "routeiq"
    served, _ = traced_proxy.chat(PROMPTS[0])
    assert receiver.wait_for(ROUTE_METHOD), traced_proxy.log()
    route = _one(receiver.wait_for("routeiq.route"), "routeiq.route")
    # The proxy's HTTP span ends (and is exported) last, after the response went out.
    assert receiver.wait_for(HTTP_SPAN), sorted({s.name for s in receiver.spans()})
    trace = [s for s in receiver.spans() if s.trace_id == route.trace_id]
    service_span = _one(trace, ROUTE_METHOD)

    # The service continued the gateway's context: same trace, parent = routeiq.route.
    assert service_span.parent_span_id == route.span_id
    assert route.attributes["routeiq.decision_id"] == service_span.attributes["routeiq.decision_id"]
    assert route.attributes["routeiq.selected_deployment"] == served
    # The GenAI name of the model the request goes to: the deployment's, provider prefix aside.
    models = {d["model_info"]["id"]: d["litellm_params"]["model"] for d in _model_list(K8S_CONFIG)}
    assert route.attributes["gen_ai.request.model"] == models[served].split("/", 1)[1]

    # ... and the whole request is that one trace: from the service's span, parents lead through
    # routeiq.route to the proxy's HTTP server span, and LiteLLM's call span is in it too.
    by_id = {s.span_id: s for s in trace}
    chain = [service_span]
    while chain[-1].parent_span_id:
        chain.append(by_id[chain[-1].parent_span_id])
    assert chain[1] is route
    assert chain[-1].name == HTTP_SPAN
    assert "litellm_request" in {s.name for s in trace}
    assert route.attributes["routeiq.fallback"] is False
    assert not [k for k in route.attributes if k.startswith("router.")]

    version = metadata.version("routeiq")
    assert route.resource["service.name"] == "routeiq-gateway"
    assert route.resource["service.version"] == version
    assert service_span.resource["service.name"] == "routeiq-decision-service"
    assert service_span.resource["service.version"] == version
