"""A share of strong-model calls through the real gRPC service and a real ``litellm.Router``.

The bundle is a real MLP trained and calibrated by the trainer's pipeline on the population of
``tests.unit.calibration_data``; the prompts routed here are a fresh draw of it, sent as
embeddings. The service's ``ROUTEIQ_STRONG_SHARE`` and a request's ``strong_share`` must each
send about that share of them to the strong model; the gateway must send its setting and
its callers' metadata as ``RouteRequest.strong_share`` and get the service's own picks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import grpc
import numpy as np
import pytest
from litellm import Router

from gateway_client import DecisionClient, GatewayClientSettings
from gateway_client.strategy import METADATA_KEY, Reason, install
from routeiq.decision.v1 import decision_pb2 as pb
from tests.unit.calibration_data import MODELS, STRONG, draw, train_calibrated_bundle
from tests.unit.calibration_data import without_calibration as uncalibrated

from .servers import DecisionServiceProcess

pytestmark = pytest.mark.integration

TOLERANCE = 0.03
CANDIDATES = [pb.Candidate(id=f"d-{m.model_name}", model_name=m.model_name) for m in MODELS]
STRONG_ID = f"d-{MODELS[STRONG].model_name}"


@pytest.fixture(scope="module")
def bundle_dir(encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_calibrated_bundle(encoder_dir, tmp_path_factory.mktemp("strong-share"))


@pytest.fixture(scope="module")
def server(bundle_dir: Path, encoder_dir: Path) -> Iterator[DecisionServiceProcess]:
    """The service with a service-wide share of 0.25."""
    with DecisionServiceProcess(bundle_dir, encoder_dir, ROUTEIQ_STRONG_SHARE="0.25") as server:
        yield server
    server.stop()


@pytest.fixture(scope="module")
def fresh() -> np.ndarray:
    return draw(2000, seed=21).embeddings


def route(client: DecisionClient, row: np.ndarray, **tradeoff: float) -> pb.RouteResponse:
    request = pb.RouteRequest(
        embedding=pb.Embedding(values=row.tolist()), candidates=CANDIDATES, **tradeoff
    )
    return client.route(request, timeout_s=10.0)


def served_share(client: DecisionClient, rows: np.ndarray, **tradeoff: float) -> float:
    picks = [route(client, row, **tradeoff).ranked[0].id for row in rows]
    return sum(p == STRONG_ID for p in picks) / len(picks)


def test_the_service_setting_and_the_request_field_set_the_share(
    server: DecisionServiceProcess, fresh: np.ndarray
) -> None:
    with DecisionClient(server.address) as client:
        by_setting = served_share(client, fresh)
        by_request = served_share(client, fresh, strong_share=0.8)
        by_weight = served_share(client, fresh[:300], cost_weight=0.0)
    print(f"setting 0.25 -> {by_setting:.4f}; request 0.8 -> {by_request:.4f}")
    assert by_setting == pytest.approx(0.25, abs=TOLERANCE)
    assert by_request == pytest.approx(0.8, abs=TOLERANCE)
    assert by_weight > 0.8 + TOLERANCE  # a raw weight still overrides the setting


@pytest.mark.parametrize(
    ("tradeoff", "message"),
    [({"strong_share": 0.5, "cost_weight": 0.1}, "not both"), ({"strong_share": 1.5}, "[0, 1]")],
)
def test_bad_asks_are_invalid_arguments(
    server: DecisionServiceProcess, fresh: np.ndarray, tradeoff: dict[str, float], message: str
) -> None:
    with DecisionClient(server.address) as client, pytest.raises(grpc.RpcError) as caught:
        route(client, fresh[0], **tradeoff)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")


def test_a_bundle_without_calibration(
    bundle_dir: Path, encoder_dir: Path, fresh: np.ndarray, tmp_path: Path
) -> None:
    old = uncalibrated(bundle_dir, tmp_path)
    with (
        DecisionServiceProcess(old, encoder_dir) as server,
        DecisionClient(server.address) as client,
    ):
        route(client, fresh[0])  # serves its default weight
        with pytest.raises(grpc.RpcError) as caught:
            route(client, fresh[0], strong_share=0.3)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "send cost_weight" in (caught.value.details() or "")
    refusing = DecisionServiceProcess(old, encoder_dir, ROUTEIQ_STRONG_SHARE="0.3")
    with pytest.raises(RuntimeError, match="ROUTEIQ_STRONG_SHARE"):
        refusing.start(timeout_s=30.0)
    refusing.stop()


class Spy:
    """A real DecisionClient that keeps the requests it sent."""

    def __init__(self, inner: DecisionClient) -> None:
        self.inner = inner
        self.requests: list[pb.RouteRequest] = []

    def route(self, request: pb.RouteRequest, timeout_s: float, metadata: Any = None) -> Any:
        self.requests.append(request)
        return self.inner.route(request, timeout_s, metadata)

    async def route_async(
        self, request: pb.RouteRequest, timeout_s: float, metadata: Any = None
    ) -> Any:
        self.requests.append(request)
        return await self.inner.route_async(request, timeout_s, metadata)


def test_the_gateway_sends_the_share_and_serves_the_services_pick(
    server: DecisionServiceProcess,
) -> None:
    # The gateway sends prompts: real text, whose embeddings are not the fixture's
    # population, so this checks the plumbing (what is sent, what is served), not the rate.
    model_list = [
        {
            "model_name": "auto",
            "litellm_params": {
                "model": f"openai/{m.model_name}",
                "mock_response": "ok",
                "api_key": "x",
                "input_cost_per_token": m.cost_per_million_tokens / 1e6,
                "output_cost_per_token": m.cost_per_million_tokens / 1e6,
            },
            "model_info": {"id": f"d-{m.model_name}"},
        }
        for m in MODELS
    ]
    router = Router(model_list=model_list, num_retries=0)
    prompts = [f"Question {i}: how many primes are below {10 * i + 7}?" for i in range(20)]
    with DecisionClient(server.address) as client:
        spy = Spy(client)
        settings = GatewayClientSettings(
            target="unused:1", deadline_ms=10000, fallback_policy="ordered", strong_share=0.0
        )
        strategy = install(router, settings, spy, outcomes=False)
        picks: dict[float, list[str]] = {}
        for share, metadata in ((0.0, {}), (1.0, {"routeiq": {"strong_share": 1.0}})):
            picks[share] = []
            for prompt in prompts:
                meta: dict[str, Any] = dict(metadata)
                response = router.completion(
                    model="auto", messages=[{"role": "user", "content": prompt}], metadata=meta
                )
                assert meta[METADATA_KEY]["reason"] == Reason.ROUTED
                picks[share].append(str(response._hidden_params["model_id"]))
        strategy.close()
        sent = spy.requests
        assert [r.strong_share for r in sent] == [0.0] * 20 + [1.0] * 20
        assert not any(r.HasField("cost_weight") for r in sent)
        # What the gateway served is what the service answers to the same request.
        for request, pick in zip(sent, picks[0.0] + picks[1.0], strict=True):
            assert client.route(request, timeout_s=10.0).ranked[0].id == pick
    # Share 0 is the table's largest weight and share 1 its smallest: the strong model gets
    # no more prompts with the former than with the latter, and fewer unless the text ties.
    low, high = (sum(p == STRONG_ID for p in picks[s]) for s in (0.0, 1.0))
    print(f"gateway: strong-model picks at share 0 -> {low}/20, share 1 -> {high}/20")
    assert low <= high
