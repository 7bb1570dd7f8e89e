"""The decision service as a real process on loopback, spoken to over gRPC."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from decision_service.bundle import read_manifest
from decision_service.domain import CandidateIn, RouteQuery
from decision_service.server import build_decider
from decision_service.settings import ServiceSettings
from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from .servers import REPO, DecisionServiceProcess, free_port

pytestmark = pytest.mark.integration

PROMPTS = [
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Translate 'where is the train station?' into German.",
    "hey, how was your weekend?",
    "Solve for x: 3x + 7 = 22. Show each step.",
    "If all bloops are razzies and some razzies are lazzies, are some bloops lazzies?",
]


@pytest.fixture(scope="module")
def service(knn_bundle_dir: Path, encoder_dir: Path):
    with DecisionServiceProcess(knn_bundle_dir, encoder_dir) as proc:
        yield proc


@pytest.fixture(scope="module")
def stub(service):
    with grpc.insecure_channel(service.address) as channel:
        yield pb_grpc.DecisionServiceStub(channel)


def _request(prompt: str, models: list[str], **kwargs) -> pb.RouteRequest:
    return pb.RouteRequest(
        prompt=prompt,
        candidates=[pb.Candidate(id=f"dep-{i}", model_name=m) for i, m in enumerate(models)],
        requested_model="auto",
        **kwargs,
    )


def test_route_ranks_every_candidate_through_the_onnx_bundle(stub, knn_bundle_dir, encoder_dir):
    manifest = read_manifest(knn_bundle_dir)
    models = [*manifest.model_names, "some-model-the-router-never-saw"]
    decider = build_decider(ServiceSettings(bundle_dir=knn_bundle_dir, encoder_dir=encoder_dir))
    tops = set()
    for prompt in PROMPTS:
        reply = stub.Route(_request(prompt, models), timeout=10)
        assert sorted(r.id for r in reply.ranked) == sorted(f"dep-{i}" for i in range(len(models)))
        assert reply.ranked[-1].model_name == "some-model-the-router-never-saw"
        assert not reply.ranked[-1].known_to_router
        assert reply.bundle_version == manifest.bundle_version
        assert reply.strategy_name == manifest.strategy_name
        assert reply.decision_id and reply.selection_reason == "highest_score"
        assert reply.timings.total_ms >= reply.timings.embedding_ms > 0
        assert reply.prompt_tokens > 0 and not reply.prompt_truncated
        # The service computes exactly what the bundle computes in process.
        local = decider.decide(
            RouteQuery(
                prompt=prompt,
                candidates=[CandidateIn(id=f"dep-{i}", model_name=m) for i, m in enumerate(models)],
            )
        )
        assert [r.id for r in reply.ranked] == [r.id for r in local.ranked]
        assert [r.score for r in reply.ranked] == pytest.approx(
            [r.score for r in local.ranked], abs=1e-5
        )
        tops.add(reply.ranked[0].model_name)
    # A trained router tells kinds of prompt apart rather than always picking one model.
    assert len(tops) >= 2


def test_route_ranks_only_the_candidates_named(stub, knn_bundle_dir):
    names = read_manifest(knn_bundle_dir).model_names[:2]
    reply = stub.Route(_request(PROMPTS[0], names), timeout=10)
    assert {r.model_name for r in reply.ranked} == set(names)


def test_cost_weight_override_prefers_cheaper_models(stub, knn_bundle_dir):
    manifest = read_manifest(knn_bundle_dir)
    names = manifest.model_names
    price = {c.model_name: c.cost_per_million_tokens for c in manifest.candidates}
    free = stub.Route(_request(PROMPTS[3], names, cost_weight=0.0), timeout=10)
    stingy = stub.Route(_request(PROMPTS[3], names, cost_weight=1.0), timeout=10)
    assert price[stingy.ranked[0].model_name] == min(price.values())
    assert free.ranked[0].predicted_quality >= stingy.ranked[0].predicted_quality


def test_precomputed_embedding_gives_the_same_ranking(stub, knn_bundle_dir, encoder_dir):
    from decision_service.encoder import OnnxEncoder

    names = read_manifest(knn_bundle_dir).model_names
    embedding = OnnxEncoder(encoder_dir).encode([PROMPTS[1]]).embeddings[0]
    by_text = stub.Route(_request(PROMPTS[1], names), timeout=10)
    by_vector = stub.Route(
        pb.RouteRequest(
            embedding=pb.Embedding(values=embedding.tolist()),
            candidates=[pb.Candidate(id=f"dep-{i}", model_name=m) for i, m in enumerate(names)],
        ),
        timeout=10,
    )
    assert [r.id for r in by_vector.ranked] == [r.id for r in by_text.ranked]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.RouteRequest(candidates=[pb.Candidate(id="a", model_name="m")]), "exactly one of"),
        (_request("   ", ["gpt-4o"]), "prompt is empty"),
        (pb.RouteRequest(prompt="hi"), "no candidates"),
        (
            pb.RouteRequest(
                prompt="hi",
                candidates=[
                    pb.Candidate(id="a", model_name="m"),
                    pb.Candidate(id="a", model_name="n"),
                ],
            ),
            "appears twice",
        ),
        (
            pb.RouteRequest(
                embedding=pb.Embedding(values=[0.1] * 7),
                candidates=[pb.Candidate(id="a", model_name="m")],
            ),
            "embedding has 7 values",
        ),
        (
            pb.RouteRequest(
                embedding=pb.Embedding(values=[float("nan")] * 384),
                candidates=[pb.Candidate(id="a", model_name="m")],
            ),
            "NaN",
        ),
        (_request("hi", ["gpt-4o"], cost_weight=7.0), "cost_weight"),
        (_request("x" * 300_000, ["gpt-4o"]), "characters"),
        (
            pb.RouteRequest(prompt="hi", candidates=[pb.Candidate(id="", model_name="m")]),
            "empty id",
        ),
    ],
)
def test_bad_input_is_invalid_argument_with_a_reason(stub, service, request_, message):
    with pytest.raises(grpc.RpcError) as err:
        stub.Route(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    # and the service keeps serving
    with grpc.insecure_channel(service.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_long_prompt_is_truncated_and_reported(stub, knn_bundle_dir):
    names = read_manifest(knn_bundle_dir).model_names
    reply = stub.Route(_request("explain recursion again " * 400, names), timeout=10)
    assert reply.prompt_truncated and reply.prompt_tokens == 256


def test_health_reports_serving_for_the_service_name(service):
    with grpc.insecure_channel(service.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "routeiq.decision.v1.DecisionService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _refusal(bundle: Path, encoder_dir: Path) -> tuple[int, str]:
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "decision_service",
            "--bundle",
            str(bundle),
            "--encoder",
            str(encoder_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr


def test_tampered_bundle_is_refused_at_start(tmp_path, knn_bundle_dir, encoder_dir):
    bundle = Path(shutil.copytree(knn_bundle_dir, tmp_path / "tampered", symlinks=False))
    router = bundle / "router.onnx"
    data = bytearray(router.read_bytes())
    data[-1] ^= 0xFF
    router.write_bytes(bytes(data))
    code, log = _refusal(bundle, encoder_dir)
    assert code == 2
    assert "refusing to start" in log and "sha256" in log


def test_bundle_with_a_pickle_is_refused_at_start(tmp_path, knn_bundle_dir, encoder_dir):
    bundle = Path(shutil.copytree(knn_bundle_dir, tmp_path / "pickled", symlinks=False))
    (bundle / "model.pkl").write_bytes(b"\x80\x04\x95")
    code, log = _refusal(bundle, encoder_dir)
    assert code == 2
    assert "pickle" in log


def test_sigterm_drains_and_exits_zero(knn_bundle_dir, encoder_dir):
    proc = DecisionServiceProcess(knn_bundle_dir, encoder_dir).start()
    assert proc.stop() == 0
