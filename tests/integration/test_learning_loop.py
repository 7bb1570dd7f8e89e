"""The learning loop end to end: traffic -> OTLP -> trainer.learn -> registry -> reload -> better.

Two mock deployments behind a real ``litellm.Router`` with the RouteIQ strategy: ``cheap``
($1 per million tokens) answers everything but math right, ``strong`` ($1.5) answers
everything right; a "judge" in the test scores each answer by the prompt's kind and sends
``RecordFeedback(source=judge)``. The base bundle (trained by the trainer's own writer on
data that says the cheap model is good at everything) sends math to the cheap model.

* a decision service with ``exploration_rate=0.2``, ``telemetry_embedding`` and OTLP export
  to a receiver the test runs serves the traffic; the gateway sends outcomes
  (``record_outcomes``) and the judge its scores;
* ``python -m trainer.learn`` trains a KNN from the received spans (as OTLP JSON);
* ``trainer publish`` + ``promote`` to a moto S3 registry, ``sync agent --once`` into the
  services' models dir; both services' pointer watchers reload it;
* the same prompts are replayed through a second service without exploration, before and
  after: the share of math prompts sent to the strong model must rise by a clear margin, the
  other prompts must stay on the cheap one, and realised quality per dollar must improve.

The figures are printed (``pytest -s``) and quoted in docs/learning.md ("End to end").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from gateway_client import DecisionClient, GatewayClientSettings, decision_id_of, send_feedback
from gateway_client.strategy import install
from routeiq.decision.v1 import decision_pb2
from tools.local_service import free_loopback_port

from .otlp_receiver import OtlpReceiver
from .servers import DecisionServiceProcess

pytestmark = pytest.mark.integration

BUCKET = "routeiq-learning"
REGISTRY = f"s3://{BUCKET}/loop"
GROUP = "chat"
KINDS = ("math", "chit-chat", "translation")
PRICES = {"cheap": 1.0, "strong": 1.5}  # USD per million tokens, input and output alike
COST_WEIGHT = 0.2  # strong must gain 0.2 * log2(1.5) = 0.117 quality to be worth its price
TRAFFIC = 240  # requests the exploring service serves (80 per kind)
EXPLORATION = 0.2
SEED = 13


@dataclass(frozen=True)
class Prompt:
    text: str
    kind: str


def _prompts(n: int, seed: int) -> list[Prompt]:
    from trainer.synthetic import generate_prompts

    kept = [p for p in generate_prompts(3 * n, seed) if p.kind in KINDS]
    return [Prompt(p.query, p.kind) for p in kept[:n]]


def _judge(kind: str, answer: str) -> float:
    """The test's grader: the cheap model's math answers are wrong, every other answer right."""
    return 0.0 if kind == "math" and answer.startswith("cheap") else 1.0


class RecordingReceiver(OtlpReceiver):
    """The OTLP receiver that also keeps each export request as OTLP JSON (the Collector's
    file exporter format, what ``trainer.learn --otlp`` reads)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        super().__init__()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        as_json = MessageToDict(request)
        with self._lock:
            self.requests.append(as_json)
        return super().Export(request, context)

    def event_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            requests = list(self.requests)
        for request in requests:
            for resource in request.get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    for span in scope.get("spans", []):
                        for event in span.get("events", []):
                            counts[event["name"]] = counts.get(event["name"], 0) + 1
        return counts

    def write_json_lines(self, path: Path) -> Path:
        with self._lock:
            path.write_text("".join(json.dumps(r) + "\n" for r in self.requests))
        return path


def _model_list() -> list[dict[str, Any]]:
    return [
        {
            "model_name": GROUP,
            "litellm_params": {
                "model": f"openai/{name}-model",
                "api_key": "x",
                "mock_response": f"{name} answer",
                "input_cost_per_token": price / 1e6,
                "output_cost_per_token": price / 1e6,
            },
            "model_info": {"id": f"dep-{name}"},
        }
        for name, price in PRICES.items()
    ]


class Gateway:
    """A LiteLLM Router with the RouteIQ strategy pointed at one decision service."""

    def __init__(self, address: str, *, record_outcomes: bool) -> None:
        from litellm import Router

        self.router = Router(model_list=_model_list(), num_retries=0)
        settings = GatewayClientSettings(
            target=address,
            deadline_ms=5000,  # generous: no request may fall back on a busy CI machine
            fallback_policy="ordered",
            record_outcomes=record_outcomes,
        )
        self.strategy = install(self.router, settings)

    def ask(self, prompt: str) -> tuple[str, str, float, str | None]:
        """(served deployment, answer, cost in USD, decision id)."""
        metadata: dict[str, Any] = {}
        response = self.router.completion(
            model=GROUP, messages=[{"role": "user", "content": prompt}], metadata=metadata
        )
        served = str(response._hidden_params["model_id"])
        usage = response.usage
        price = PRICES[served.removeprefix("dep-")] / 1e6
        cost = (usage.prompt_tokens + usage.completion_tokens) * price
        return served, str(response.choices[0].message.content), cost, decision_id_of(metadata)

    def close(self) -> None:
        reporter = self.strategy.outcome_callback.reporter
        if reporter is not None:
            reporter.flush(10.0)
        self.strategy.close()


@dataclass(frozen=True)
class Figures:
    math_to_strong: float  # share of math prompts served by the strong model
    other_to_cheap: float  # share of the other prompts served by the cheap model
    success_rate: float
    cost_usd: float
    quality_per_dollar: float  # judged successes per USD

    def show(self) -> str:
        return (
            f"math->strong {self.math_to_strong:.0%}, other->cheap {self.other_to_cheap:.0%}, "
            f"judged success {self.success_rate:.1%}, cost ${self.cost_usd:.6f}, "
            f"quality per dollar {self.quality_per_dollar:,.0f} successes/USD"
        )


def _replay(gateway: Gateway, prompts: list[Prompt]) -> Figures:
    served_strong_math = math = other_cheap = successes = 0
    cost = 0.0
    for prompt in prompts:
        served, answer, call_cost, _ = gateway.ask(prompt.text)
        cost += call_cost
        successes += int(_judge(prompt.kind, answer) == 1.0)
        if prompt.kind == "math":
            math += 1
            served_strong_math += served == "dep-strong"
        else:
            other_cheap += served == "dep-cheap"
    return Figures(
        math_to_strong=served_strong_math / math,
        other_to_cheap=other_cheap / (len(prompts) - math),
        success_rate=successes / len(prompts),
        cost_usd=cost,
        quality_per_dollar=successes / cost,
    )


def _base_bundle(encoder_dir: Path, out: Path) -> Path:
    """A KNN the trainer writes from data where the cheap model is good at everything."""
    from decision_service.encoder import OnnxEncoder
    from decision_service.manifest import CandidateModel
    from trainer.bundle_writer import write_bundle
    from trainer.embed import embed_texts
    from trainer.learn import SAMPLE_PROMPTS, PartialLabels, fit_partial

    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    texts = [p.text for p in _prompts(60, SEED + 1)]
    embeddings = embed_texts(encoder, texts)
    labels = np.ones((len(texts), len(PRICES)), np.float32)  # both models always right
    data = PartialLabels(embeddings, labels, np.ones_like(labels), dropped=Counter())
    exported = fit_partial(data, "knn", seed=SEED, k=10)
    candidates = [
        CandidateModel(model_name=f"{name}-model", provider="openai", cost_per_million_tokens=price)
        for name, price in PRICES.items()
    ]
    out.mkdir(parents=True)
    (out / "encoder").symlink_to(encoder_dir, target_is_directory=True)  # the trainer layout
    written = write_bundle(
        out,
        exported,
        encoder=encoder,
        candidates=candidates,
        sample_prompts=SAMPLE_PROMPTS,
        training={"origin": "test: the cheap model labelled good at everything"},
        default_cost_weight=COST_WEIGHT,
    )
    return Path(written.directory)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on a free loopback port, with the fake credentials boto3 needs."""
    pytest.importorskip("moto.server")
    import boto3
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _publish_and_sync(
    endpoint: str, bundle: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``trainer publish --promote stable`` (forced: a bundle without held-out metrics), then
    one sync agent pass into ``models``; returns the version ``models/current`` names."""
    from decision_service.sync.__main__ import main as sync_main
    from trainer.cli import main as trainer_main

    registry = ["--registry", REGISTRY, "--s3-endpoint", endpoint]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = trainer_main(
            ["publish", *registry, "--bundle", str(bundle), "--promote", "stable", "--force",
             "--reason", "trained from traffic: no held-out metrics"]
        )  # fmt: skip
    assert code == 0, out.getvalue()
    monkeypatch.setenv("ROUTEIQ_S3_ENDPOINT", endpoint)
    assert sync_main(["--registry", REGISTRY, "--models-dir", str(models), "--once"]) == 0
    return os.readlink(models / "current")


def _bundle_version(address: str) -> str:
    with DecisionClient(address) as client:
        request = decision_pb2.RouteRequest(
            prompt="What is 2 + 2?",
            candidates=[
                decision_pb2.Candidate(id=f"dep-{n}", model_name=f"{n}-model") for n in PRICES
            ],
            requested_model=GROUP,
        )
        return str(client.route(request, timeout_s=30.0).bundle_version)


def _wait_for_version(address: str, version: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (current := _bundle_version(address)) != version:
        assert time.monotonic() < deadline, f"{address} still serves {current}, not {version}"
        time.sleep(0.2)


def test_traffic_trains_a_router_that_sends_math_to_the_strong_model(
    encoder_dir: Path, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    models = tmp_path / "models"
    base_version = _publish_and_sync(
        s3_endpoint, _base_bundle(encoder_dir, tmp_path / "built"), models, monkeypatch
    )

    receiver = RecordingReceiver()
    telemetry = {
        "ROUTEIQ_RELOAD_POLL_MS": "200",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{receiver.address}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_EXPORTER": "otlp",
    }
    explorer = DecisionServiceProcess(
        models / "current",
        models / "encoder",
        ROUTEIQ_EXPLORATION_RATE=str(EXPLORATION),
        ROUTEIQ_TELEMETRY_EMBEDDING="true",
        ROUTEIQ_TELEMETRY_EVENTS_FILE=str(tmp_path / "events.jsonl"),
        **telemetry,
    )
    replayer = DecisionServiceProcess(
        models / "current",
        models / "encoder",
        ROUTEIQ_RELOAD_POLL_MS="200",
        ROUTEIQ_EXPLORATION_RATE="0",
    )
    gateways: list[Gateway] = []
    try:
        explorer.start()
        replayer.start()
        assert _bundle_version(explorer.address) == base_version
        traffic = _prompts(TRAFFIC, SEED)
        replay = Gateway(replayer.address, record_outcomes=False)
        live = Gateway(explorer.address, record_outcomes=True)
        gateways += [replay, live]

        before = _replay(replay, traffic)

        # Live traffic: the exploring service routes, the gateway reports outcomes, the judge
        # scores every answer.
        judged = 0
        with DecisionClient(explorer.address) as client:
            for prompt in traffic:
                _, answer, _, decision_id = live.ask(prompt.text)
                assert decision_id
                send_feedback(
                    client, decision_id, score=_judge(prompt.kind, answer), source="judge",
                    source_name="kind-judge@test", timeout_s=10.0,
                )  # fmt: skip
                judged += 1
        live.close()  # flushes the outcome reporter
        reporter = live.strategy.outcome_callback.reporter
        assert reporter is not None
        outcomes = reporter.sent  # RecordOutcome calls the service answered
        assert outcomes >= 0.9 * TRAFFIC, (reporter.sent, reporter.dropped)
        deadline = time.monotonic() + 30.0
        while True:
            counts = receiver.event_counts()
            complete = (
                counts.get("routeiq.router_decision.v1", 0) >= TRAFFIC
                and counts.get("routeiq.router_outcome.v1", 0) >= outcomes
                and counts.get("routeiq.router_feedback.v1", 0) >= judged
            )
            if complete or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert complete, counts

        # Train from what the receiver got, as OTLP JSON.
        from trainer.learn import main as learn_main

        spans = receiver.write_json_lines(tmp_path / "traces.jsonl")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = learn_main(
                ["--otlp", str(spans), "--base-bundle", str(models / "current"),
                 "--encoder", str(models / "encoder"), "--router", "knn",
                 "--out", str(tmp_path / "learned"), "--seed", str(SEED)]
            )  # fmt: skip
        assert code == 0, out.getvalue()
        printed = out.getvalue()
        report = json.loads(printed[: printed.rindex("wrote ")])
        learned = Path(printed.rsplit("wrote ", 1)[1].strip())
        # The trainer layout: the encoder beside the bundle, where `trainer publish` looks.
        assert (learned.parent / "encoder").resolve() == (models / "encoder").resolve()

        # The events file holds the same decisions, outcomes and feedback.
        from trainer.sources.traffic import TrafficJoin

        from_file = TrafficJoin()
        from_file.add_events_file([tmp_path / "events.jsonl"])
        assert len(from_file.join()) == report["labelled"]

        new_version = _publish_and_sync(s3_endpoint, learned, models, monkeypatch)
        assert new_version != base_version
        _wait_for_version(explorer.address, new_version)
        _wait_for_version(replayer.address, new_version)

        after = _replay(replay, traffic)
    finally:
        for gateway in gateways:
            gateway.close()
        explorer.stop()
        replayer.stop()
        receiver.close()

    print(f"\njoin report: {json.dumps(report)}")
    print(f"before ({base_version}): {before.show()}")
    print(f"after  ({new_version}): {after.show()}")
    print(f"loop took {time.monotonic() - started:.1f}s")

    # The one version probe sent to the explorer before the traffic is a decision without
    # an outcome; every request of the traffic is labelled, by the judge.
    assert report["decisions"] == TRAFFIC + 1 and report["labelled"] == TRAFFIC
    assert report["dropped"] == {"no_outcome_or_feedback": 1}
    assert report["label_sources"] == {"judge": TRAFFIC}
    observed = report["observed_per_model"]
    # Exploration served the strong model ~10% of the time (rate 0.2, drawn from 2 models).
    assert observed["strong-model"] >= 5, observed
    assert before.math_to_strong <= 0.2
    assert after.math_to_strong >= 0.8
    assert after.math_to_strong - before.math_to_strong >= 0.6
    assert after.other_to_cheap >= 0.8
    assert after.success_rate > before.success_rate + 0.2
    assert after.quality_per_dollar >= 1.1 * before.quality_per_dollar
