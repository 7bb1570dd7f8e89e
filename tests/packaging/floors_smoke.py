"""Smoke checks run *inside* a scratch venv holding the lowest allowed dependency versions.

``check_floors.py`` installs the floors and the built wheel (``--no-deps``) and runs this file
with ``python -I`` from a temporary folder, so every import resolves to the scratch venv's
site-packages and never to the checkout. Standard library and installed packages only.

    python -I floors_smoke.py service   the contract, every decision_service module, an ONNX
                                        router head, bundle signing, and a grpc.server with
                                        health, reflection and OpenTelemetry tracing
    python -I floors_smoke.py gateway   the contract, every gateway_client module, and a
                                        litellm.Router whose RouteIQ strategy asks a gRPC
                                        decision server which mock deployment serves
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import importlib.metadata
import os
import pkgutil
import sys
import tempfile
from concurrent import futures
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no GOAWAY info lines from server.stop()


def import_all(package: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """Import ``package`` and every module under it; the names imported."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name in skip:
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def contract() -> None:
    from routeiq.decision.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

    request = decision_pb2.RouteRequest(
        prompt="hello",
        candidates=[decision_pb2.Candidate(id="a", model_name="m", cost_per_million_tokens=1.5)],
        cost_weight=0.2,
    )
    again = decision_pb2.RouteRequest.FromString(request.SerializeToString())
    assert again == request and again.HasField("cost_weight"), again
    assert hasattr(decision_pb2_grpc, "DecisionServiceStub")
    assert hasattr(admin_pb2_grpc, "AdminServiceStub")
    assert admin_pb2.DESCRIPTOR.package == "routeiq.decision.v1"
    print("contract: stubs import and round-trip")


class RankReversed:
    """A DecisionService that ranks the candidates in reverse order."""

    def __init__(self) -> None:
        self.outcomes: list[object] = []
        self.routes: list[object] = []

    def Route(self, request, context):
        from routeiq.decision.v1 import decision_pb2

        self.routes.append(request)

        ranked = [
            decision_pb2.RankedCandidate(id=c.id, model_name=c.model_name, score=float(i))
            for i, c in enumerate(reversed(request.candidates))
        ]
        return decision_pb2.RouteResponse(
            ranked=ranked, decision_id="d-1", strategy_name="reverse", bundle_version="floors"
        )

    def ListStrategies(self, request, context):
        from routeiq.decision.v1 import decision_pb2

        return decision_pb2.ListStrategiesResponse(default_strategy="reverse")

    def RecordOutcome(self, request, context):
        from routeiq.decision.v1 import decision_pb2

        self.outcomes.append(request)
        return decision_pb2.RecordOutcomeResponse()


def _servicer_class():
    from routeiq.decision.v1 import decision_pb2_grpc

    return type("Servicer", (RankReversed, decision_pb2_grpc.DecisionServiceServicer), {})


# -- service -----------------------------------------------------------------------------------


def onnx_router_head(tmp: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from decision_service.errors import BundleRefused
    from decision_service.manifest import RouterGraph
    from decision_service.router import OnnxRouterHead
    from decision_service.safety import refuse_unsafe_onnx

    weights = numpy_helper.from_array(np.full((4, 2), 0.25, dtype=np.float32), name="w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["embedding", "w"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["quality"]),
        ],
        "floors",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("quality", TensorProto.FLOAT, ["batch", 2])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the floor allows
    onnx.checker.check_model(model)
    path = tmp / "router.onnx"
    onnx.save(model, str(path))
    refuse_unsafe_onnx(path, tmp, error=BundleRefused)
    head = OnnxRouterHead(
        path, RouterGraph(input_name="embedding", output_name="quality", input_dim=4, output_dim=2)
    )
    quality = head.predict(np.ones((3, 4), dtype=np.float32))
    assert quality.shape == (3, 2) and np.allclose(quality, 1 / (1 + np.exp(-1.0))), quality
    print("service: onnx graph built, checked and run by OnnxRouterHead")


def signing(tmp: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from decision_service.manifest import BUNDLE_MANIFEST
    from decision_service.signing import SignaturePolicy, load_public_key, sign_bundle

    bundle = tmp / "bundle"
    bundle.mkdir()
    (bundle / BUNDLE_MANIFEST).write_text('{"floors": true}\n')
    key = Ed25519PrivateKey.generate()
    sign_bundle(bundle, key)
    pem = tmp / "key.pub"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    policy = SignaturePolicy(public_key=load_public_key(pem), required=True)
    assert policy.check(bundle, (bundle / BUNDLE_MANIFEST).read_bytes()) is True
    print("service: bundle signed and verified")


def grpc_service() -> None:
    """What decision_service.server ships: a sync grpc.server with OTel's server_interceptor,
    the sync health servicer and reflection."""
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import filters, server_interceptor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from decision_service.probe import SERVING, check
    from routeiq.decision.v1 import decision_pb2, decision_pb2_grpc

    assert OTLPSpanExporter is not None  # its opentelemetry-proto stubs load on this protobuf
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[
            server_interceptor(
                tracer_provider=provider, filter_=filters.negate(filters.health_check())
            )
        ],
    )
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(_servicer_class()(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_name = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
    reflection.enable_server_reflection(
        (service_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as channel:
            reply = decision_pb2_grpc.DecisionServiceStub(channel).Route(
                decision_pb2.RouteRequest(
                    prompt="p",
                    candidates=[decision_pb2.Candidate(id="a"), decision_pb2.Candidate(id="b")],
                ),
                timeout=5,
            )
            assert [c.id for c in reply.ranked] == ["b", "a"], reply
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            listed = {s.name for r in stream for s in r.list_services_response.service}
            assert service_name in listed, listed
        status = check(address, "", 5.0)
        assert status == SERVING, status
    finally:
        server.stop(None).wait()
    names = [s.name for s in spans.get_finished_spans()]
    assert any(name.endswith("DecisionService/Route") for name in names), names
    print("service: grpc.server Route, health, reflection and a traced span")


def service() -> None:
    contract()
    modules = import_all("decision_service")
    print(f"service: {len(modules)} decision_service modules import")
    from decision_service.settings import ServiceSettings

    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        settings = ServiceSettings(bundle_dir=tmp, port=0, static_order=["a", "b"])
        assert settings.port == 0 and settings.static_order == ["a", "b"]
        onnx_router_head(tmp)
        signing(tmp)
    grpc_service()


# -- gateway -----------------------------------------------------------------------------------


def gateway() -> None:
    contract()
    modules = import_all("gateway_client")
    print(f"gateway: {len(modules)} gateway_client modules import")
    import grpc
    import litellm
    from litellm import Router

    from gateway_client import GatewayClientSettings, install
    from routeiq.decision.v1 import decision_pb2_grpc

    servicer = _servicer_class()()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ids = ["dep-a", "dep-b", "dep-c"]
    router = Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {"model": model, "mock_response": f"from {id_}", "api_key": "x"},
                "model_info": {"id": id_},
            }
            for id_, model in zip(
                ids,
                ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3-haiku"],
                strict=True,
            )
        ]
    )
    messages = [{"role": "user", "content": "Prove that there are infinitely many primes."}]
    key = "floors-hash-key-0123"
    try:
        install(
            router,
            GatewayClientSettings(target=f"127.0.0.1:{port}", deadline_ms=5000, id_hash_key=key),
            outcomes=False,
        )
        reply = asyncio.run(router.acompletion(model="chat", messages=messages))
        assert reply.choices[0].message.content == "from dep-c", reply
        # What this LiteLLM hands the strategy: the request's metadata (cost weight, user id),
        # and the deployments, priced from its own model catalogue.
        metadata = {"routeiq": {"cost_weight": 0.25}, "user_id": "alice"}
        reply = router.completion(model="chat", messages=messages, metadata=metadata)
        assert reply.choices[0].message.content == "from dep-c", reply
    finally:
        server.stop(None)
    first, second = servicer.routes
    assert not first.HasField("cost_weight") and first.user_id_hash == "", first
    assert second.cost_weight == 0.25, second
    assert second.user_id_hash == hmac.new(key.encode(), b"alice", hashlib.sha256).hexdigest()
    prices = {c.id: c.cost_per_million_tokens for c in second.candidates}
    entry = litellm.model_cost["gpt-4o"]
    expected = (entry["input_cost_per_token"] + entry["output_cost_per_token"]) / 2 * 1e6
    assert abs(prices["dep-b"] - expected) < 1e-9, prices
    print(
        f"gateway: litellm {litellm_version(litellm)} Router served by the service's pick, "
        "with the request's cost_weight, an HMAC'd user id and catalogue prices"
    )


def litellm_version(module: object) -> str:
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


def main(argv: list[str]) -> int:
    checks = {"service": service, "gateway": gateway}
    if len(argv) != 1 or argv[0] not in checks:
        print(f"usage: floors_smoke.py {{{'|'.join(checks)}}}", file=sys.stderr)
        return 2
    checks[argv[0]]()
    print(f"{argv[0]} smoke passed on Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
