"""The service side of budget calibration, without sockets: a Route that asks for a share of
strong-model calls gets about that share over many fresh prompts, from a real calibrated
bundle; the service-wide setting does the same; bad or unservable asks are refused clearly."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import numpy as np
import pytest

from decision_service.boundary import status_for
from decision_service.bundle import RouterBundle, load_bundle
from decision_service.convert import query_from_proto
from decision_service.decide import Decider
from decision_service.domain import CandidateIn, RouteQuery
from decision_service.encoder import OnnxEncoder
from decision_service.errors import BundleRefused, InvalidRequest, NotCalibrated
from decision_service.versions import VersionRegistry
from routeiq.decision.v1 import decision_pb2 as pb

from .calibration_data import MODELS, STRONG, draw, train_calibrated_bundle, without_calibration

CANDIDATES = [CandidateIn(id=f"d-{m.model_name}", model_name=m.model_name) for m in MODELS]
TOLERANCE = 0.03


@pytest.fixture(scope="module")
def encoder(encoder_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(encoder_dir, intra_op_threads=2)


@pytest.fixture(scope="module")
def bundle(
    encoder: OnnxEncoder, encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> RouterBundle:
    directory = train_calibrated_bundle(encoder_dir, tmp_path_factory.mktemp("calibrated"))
    return load_bundle(directory, encoder)


@pytest.fixture(scope="module")
def fresh() -> np.ndarray:
    """Prompts from the same population, never seen by training or calibration."""
    return draw(3000, seed=12).embeddings


def strong_share_served(decider: Decider, rows: np.ndarray, **tradeoff: float) -> float:
    strong = MODELS[STRONG].model_name
    picks = [
        decider.decide(RouteQuery(candidates=CANDIDATES, embedding=row.tolist(), **tradeoff))
        .ranked[0]
        .model_name
        for row in rows
    ]
    return sum(p == strong for p in picks) / len(picks)


def test_a_requested_share_is_served_on_fresh_prompts(
    bundle: RouterBundle, encoder: OnnxEncoder, fresh: np.ndarray
) -> None:
    decider = Decider(VersionRegistry(encoder, bundle))
    table = bundle.manifest.strong_share_calibration
    assert table is not None and table.strong_model == MODELS[STRONG].model_name
    served = {t: strong_share_served(decider, fresh, strong_share=t) for t in (0.1, 0.25, 0.5, 0.8)}
    print("requested share -> served on 3000 fresh prompts:", served)
    for target, share in served.items():
        assert share == pytest.approx(target, abs=TOLERANCE), served
    # The bundle's default weight serves some other share: the request changed the routing.
    default = strong_share_served(decider, fresh[:1000])
    assert all(abs(default - t) > TOLERANCE for t in (0.1, 0.8))


def test_the_service_setting_replaces_the_default_weight_per_version(
    bundle: RouterBundle, encoder: OnnxEncoder, fresh: np.ndarray
) -> None:
    registry = VersionRegistry(encoder, bundle, strong_share=0.25)
    decider = Decider(registry)
    assert strong_share_served(decider, fresh) == pytest.approx(0.25, abs=TOLERANCE)
    # A request's own trade-off still wins over the setting.
    assert strong_share_served(decider, fresh[:500], cost_weight=0.0) > 0.8
    assert strong_share_served(decider, fresh[:500], strong_share=0.0) < 0.02
    table = bundle.manifest.strong_share_calibration
    assert table is not None
    strategy = registry.routing().active
    assert strategy is not None and strategy.strategy.default_weight == table.cost_weight_for(0.25)


def test_a_bundle_without_calibration_is_refused_or_named(
    bundle: RouterBundle, encoder: OnnxEncoder, tmp_path: Path
) -> None:
    old = load_bundle(without_calibration(bundle.directory, tmp_path), encoder)
    assert old.manifest.strong_share_calibration is None
    decider = Decider(VersionRegistry(encoder, old))
    row = draw(1, seed=99).embeddings[0].tolist()
    decider.decide(RouteQuery(candidates=CANDIDATES, embedding=row))  # still serves
    with pytest.raises(NotCalibrated, match="send cost_weight") as caught:
        decider.decide(RouteQuery(candidates=CANDIDATES, embedding=row, strong_share=0.3))
    assert status_for(caught.value) is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(BundleRefused, match="ROUTEIQ_STRONG_SHARE"):
        VersionRegistry(encoder, old, strong_share=0.3)
    # A calibrated registry refuses the old bundle on reload and keeps serving its own.
    registry = VersionRegistry(encoder, bundle, strong_share=0.3)
    with pytest.raises(BundleRefused):
        registry.activate(old)
    assert registry.active_version == bundle.version


@pytest.mark.parametrize(
    ("tradeoff", "message"),
    [
        ({"strong_share": 0.2, "cost_weight": 0.1}, "not both"),
        ({"strong_share": 1.5}, r"within \[0, 1\]"),
        ({"strong_share": -0.1}, r"within \[0, 1\]"),
        ({"strong_share": math.nan}, r"within \[0, 1\]"),
    ],
)
def test_bad_asks_are_invalid_arguments(
    bundle: RouterBundle, encoder: OnnxEncoder, tradeoff: dict[str, float], message: str
) -> None:
    decider = Decider(VersionRegistry(encoder, bundle))
    row = draw(1, seed=98).embeddings[0].tolist()
    with pytest.raises(InvalidRequest, match=message) as caught:
        decider.decide(RouteQuery(candidates=CANDIDATES, embedding=row, **tradeoff))
    assert status_for(caught.value) is grpc.StatusCode.INVALID_ARGUMENT


def test_the_wire_field_reaches_the_query() -> None:
    request = pb.RouteRequest(prompt="hi", candidates=[pb.Candidate(id="a", model_name="m")])
    assert query_from_proto(request).strong_share is None
    request.strong_share = 0.0  # explicit zero is a request, not "unset"
    assert query_from_proto(request).strong_share == 0.0
