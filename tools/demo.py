"""The end-to-end demo (``make demo``): a real LiteLLM Router routed by the decision service.

It starts ``python -m decision_service`` on a free loopback port with the KNN bundle the
trainer built, registers the RouteIQ strategy on a ``litellm.Router`` whose deployments
answer with ``mock_response`` (no provider needed), sends a dozen varied prompts and
prints which deployment served each. Then it stops the service and shows the same Router
still answering: the breaker opens after its failure threshold and the static fallback
picks the deployment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from decision_service.bundle import read_manifest
from gateway_client.settings import GatewayClientSettings
from tools.local_service import LocalService

PROMPTS = [
    "Write a Python function that checks whether a string is a palindrome.",
    "Fix this JavaScript: const x = [1,2,3].map(n => n * 2; console.log(x)",
    "What is the integral of x^2 * sin(x) dx? Show the steps.",
    "A train leaves at 3pm going 80 km/h; another at 4pm going 100 km/h. When does it catch up?",
    "hey! how's it going today?",
    "Tell me a fun fact about octopuses.",
    "Translate into French: 'The meeting has been moved to Thursday morning.'",
    "How do you say 'thank you very much' in Japanese?",
    "If every manager is an employee and some employees work remotely, must some managers "
    "work remotely? Explain.",
    "Three boxes are mislabeled apples, oranges and mixed. You may draw one fruit. How do you "
    "relabel them all?",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Write a SQL query returning the top 5 customers by total order value.",
]


def _model_list(bundle_dir: Path) -> list[dict[str, Any]]:
    deployments = []
    for candidate in read_manifest(bundle_dir).candidates:
        name = candidate.model_name
        deployments.append(
            {
                "model_name": "auto",
                "litellm_params": {
                    # Mock deployments speak the OpenAI protocol whatever the real provider.
                    "model": f"openai/{name}",
                    "api_key": "demo-key-unused",
                    "mock_response": f"({name} would answer here)",
                },
                "model_info": {
                    "id": f"{name}-eu-1",
                    "input_cost_per_token": candidate.cost_per_million_tokens / 1e6,
                    "output_cost_per_token": candidate.cost_per_million_tokens / 1e6,
                },
            }
        )
    return deployments


def _row(*cells: object, widths: tuple[int, ...]) -> str:
    return "  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--bundle", default="knn", help="bundle under --artifacts to serve")
    args = parser.parse_args(argv)
    bundle_dir = args.artifacts / args.bundle

    # Without this LiteLLM fetches a price map over the network at import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # imported late: slow, and only the demo's Router needs it here

    from gateway_client.strategy import install

    litellm.suppress_debug_info = True
    # LiteLLM warns that the demo's made-up prices are not in its cost map; that is expected.
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    service = LocalService(bundle_dir, "--log-level", "WARNING").start()
    address = service.address
    try:
        manifest = read_manifest(bundle_dir)
        encoder = manifest.encoder
        print(
            f"\ndecision service on {address}: bundle {manifest.bundle_version}, encoder "
            f"{encoder.variant} (first {encoder.max_tokens} tokens of a prompt)"
        )
        print("debug it with grpcurl (reflection is on):")
        print(f"  .venv/bin/grpcurl -plaintext {address} list")
        print(
            f'  .venv/bin/grpcurl -plaintext -d \'{{"prompt": "hello there", "candidates": '
            f'[{{"id": "a", "model_name": "{manifest.model_names[0]}"}}, '
            f'{{"id": "b", "model_name": "{manifest.model_names[-1]}"}}]}}\' '
            f"{address} routeiq.decision.v1.DecisionService/Route\n"
        )

        router = litellm.Router(model_list=_model_list(bundle_dir))
        settings = GatewayClientSettings(
            target=address, deadline_ms=250, breaker_failure_threshold=3, breaker_cooldown_s=60
        )
        strategy = install(router, settings)
        # The first call pays for connection setup; route one before measuring.
        router.completion(model="auto", messages=[{"role": "user", "content": "warm up"}])

        widths = (58, 24, 7, 9, 15)
        print(_row("prompt", "routed to", "score", "route ms", "reason", widths=widths))
        print(_row(*("-" * w for w in widths), widths=widths))
        for prompt in PROMPTS:
            reply = router.completion(model="auto", messages=[{"role": "user", "content": prompt}])
            d = strategy.last_decision
            assert d is not None
            print(
                _row(
                    prompt,
                    d.deployment_id,
                    f"{d.score:.3f}" if d.score is not None else "-",
                    f"{d.latency_ms:.1f}" if d.latency_ms is not None else "-",
                    d.reason.value,
                    widths=widths,
                )
            )
            assert reply.choices[0].message.content  # the Router really answered

        print(f"\nstopping the decision service (pid {service.pid}) ...")
        service.stop()
        print(_row("prompt", "served by", "breaker", "route ms", "reason", widths=widths))
        print(_row(*("-" * w for w in widths), widths=widths))
        for prompt in PROMPTS[:6]:
            started = time.perf_counter()
            reply = router.completion(model="auto", messages=[{"role": "user", "content": prompt}])
            pick_ms = (time.perf_counter() - started) * 1e3
            d = strategy.last_decision
            assert d is not None and reply.choices[0].message.content
            print(
                _row(prompt, d.deployment_id, strategy.breaker.state.value,
                     f"{pick_ms:.1f}*", d.reason.value, widths=widths)
            )  # fmt: skip
        stats = strategy.recorder.stats
        print(
            f"\n* whole completion time. routed={stats.routed} fallbacks={stats.fallbacks}: "
            "every request was answered, with or without the service."
        )
        strategy.close()
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
