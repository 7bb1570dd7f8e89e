"""Write a router bundle: a flat directory of ``manifest.json`` + ``router.onnx``.

The bundle is assembled in a temporary folder beside its destination, validated there
with the service's own ``load_bundle`` (against the encoder it was trained on), renamed
into place, and validated once more where it landed. A bundle that would be refused is
never published.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from decision_service.atomic import staged
from decision_service.bundle import RouterBundle, load_bundle
from decision_service.encoder import OnnxEncoder
from decision_service.manifest import (
    BUNDLE_MANIFEST,
    BundleManifest,
    CandidateModel,
    RouterGraph,
    Sample,
    StrongShareCalibration,
    sha256_file,
)
from decision_service.router import OnnxRouterHead
from trainer.evaluate import DEFAULT_COST_WEIGHT
from trainer.routers import ExportedRouter

ROUTER_FILE = "router.onnx"
# Drift allowed between the sample embeddings recorded here and the loading service's
# encoder: batching/threads move embeddings by ~1e-7; a different model moves them ~1e-1.
ENCODER_TOLERANCE = 1e-3


@dataclass(frozen=True)
class WrittenBundle:
    directory: Path
    manifest: BundleManifest
    bundle: RouterBundle


def bundle_version(router_type: str, router_sha256: str, now: datetime) -> str:
    return f"{router_type}-{now.strftime('%Y%m%dT%H%M%SZ')}-{router_sha256[:8]}"


def write_bundle(
    parent: Path,
    exported: ExportedRouter,
    *,
    encoder: OnnxEncoder,
    candidates: Sequence[CandidateModel],
    sample_prompts: Sequence[str],
    training: dict[str, object],
    default_cost_weight: float = DEFAULT_COST_WEIGHT,
    strong_share_calibration: StrongShareCalibration | None = None,
    now: datetime | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> WrittenBundle:
    """Write the bundle under ``parent/<bundle_version>`` and return it, validated.

    ``extra_files`` (plain names, e.g. ``metrics.json``, ``lineage.json``) are written into
    the bundle and listed with their sha256 in the manifest like the graph.
    ``strong_share_calibration`` (``trainer.calibration``) lets the service serve a share
    of strong-model calls instead of a raw cost weight.
    """
    if exported.output_dim != len(candidates):
        raise ValueError(
            f"router has {exported.output_dim} outputs but {len(candidates)} candidates were given"
        )
    if not sample_prompts:
        raise ValueError("a bundle needs at least one sample prompt")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    router_type = exported.router_type

    # The version embeds the router's hash, so it is only known once the graph is written.
    with staged(parent, f"{router_type}-bundle") as staging:
        router_path = staging.path / ROUTER_FILE
        router_path.write_bytes(exported.onnx_bytes)
        router_sha = sha256_file(router_path)
        files = {ROUTER_FILE: router_sha}
        for name, content in (extra_files or {}).items():
            if Path(name).name != name or name in (ROUTER_FILE, BUNDLE_MANIFEST):
                raise ValueError(f"extra bundle file {name!r} must be a new plain file name")
            (staging.path / name).write_bytes(content)
            files[name] = sha256_file(staging.path / name)
        version = bundle_version(router_type, router_sha, now)
        graph = RouterGraph(
            file=ROUTER_FILE,
            input_name=exported.input_name,
            output_name=exported.output_name,
            input_dim=exported.input_dim,
            output_dim=exported.output_dim,
        )
        samples = _samples(sample_prompts, encoder, OnnxRouterHead(router_path, graph))
        manifest = BundleManifest(
            bundle_version=version,
            router_type=router_type,
            strategy_name=f"routeiq-{router_type}",
            created_utc=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            candidates=list(candidates),
            default_cost_weight=default_cost_weight,
            encoder=encoder.identity,
            router=graph,
            files=files,
            parity_tolerance=exported.parity_tolerance,
            encoder_tolerance=ENCODER_TOLERANCE,
            samples=samples,
            training=_json_safe(training),
            strong_share_calibration=strong_share_calibration,
        )
        (staging.path / BUNDLE_MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
        load_bundle(staging.path, encoder)  # refuse to publish what the service would refuse
        target = staging.publish(parent / version, replace=False)
    bundle = load_bundle(target, encoder)
    return WrittenBundle(directory=target, manifest=manifest, bundle=bundle)


def _samples(prompts: Sequence[str], encoder: OnnxEncoder, head: OnnxRouterHead) -> list[Sample]:
    # One prompt per call, exactly as a request is embedded when served.
    embeddings = np.concatenate([encoder.encode([p]).embeddings for p in prompts])
    quality = head.predict(embeddings)
    return [
        Sample(prompt=p, embedding=[float(v) for v in e], quality=[float(v) for v in q])
        for p, e, q in zip(prompts, embeddings, quality, strict=True)
    ]


def _json_safe(value: dict[str, object]) -> dict[str, object]:
    """Round-trip through JSON so numpy scalars and tuples become plain JSON values."""

    def default(obj: object) -> object:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    result: dict[str, object] = json.loads(json.dumps(value, default=default))
    return result
