"""Test doubles that need no torch and no exported model: a fake encoder and tiny bundles.

``FakeEncoder`` implements ``decision_service.encoder.Encoder`` (what ``OnnxEncoder``
offers the service): a signed hashed bag of words, L2-normalised, so texts sharing words
have close embeddings and the same text always has the same one. It has its own
``EncoderIdentity`` (name ``fake-hashed-bow``); bundles are written for that identity, so
the service's encoder check holds honestly and a bundle for another identity is refused.

``write_bundle`` writes a real bundle (manifest.json + router.onnx) that ``load_bundle``
validates like any other: the router is a small ONNX graph, ``sigmoid(scale * E @ W + b)``,
whose column for each model is the fake embedding of that model's keywords, so a prompt
about a model's topic ranks that model first.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from decision_service.encoder import EncodedBatch
from decision_service.manifest import (
    BUNDLE_MANIFEST,
    BundleManifest,
    CandidateModel,
    EncoderIdentity,
    RouterGraph,
    Sample,
    sha256_file,
)
from decision_service.router import OnnxRouterHead

_WORD = re.compile(r"\w+")


class FakeEncoder:
    """Hashed bag of words -> unit vector; deterministic across runs and processes."""

    def __init__(
        self,
        dimension: int = 32,
        *,
        variant: str = "fp32",
        max_tokens: int = 64,
        delay_s: float = 0.0,
        name: str = "fake-hashed-bow",
    ) -> None:
        self.identity = EncoderIdentity(
            name=name,
            variant=variant,
            onnx_sha256=hashlib.sha256(f"{name}/{variant}/{dimension}".encode()).hexdigest(),
            tokenizer_sha256=hashlib.sha256(b"lowercase words").hexdigest(),
            max_tokens=max_tokens,
            dimension=dimension,
        )
        self.delay_s = delay_s  # per run: lets concurrent callers overlap like a real encoder
        self.fail_with: BaseException | None = None
        self.runs = 0
        self.texts_encoded = 0
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self.identity.dimension

    def encode(self, texts: Sequence[str]) -> EncodedBatch:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.runs += 1
            self.texts_encoded += len(texts)
            self.batch_sizes.append(len(texts))
        rows, tokens, truncated = [], [], []
        for text in texts:
            words = _WORD.findall(text.lower())
            kept = words[: self.identity.max_tokens]
            rows.append(self.embed_words(kept))
            tokens.append(len(kept))
            truncated.append(len(words) > len(kept))
        embeddings = (np.stack(rows) if rows else np.zeros((0, self.dimension), np.float32)).astype(
            np.float32
        )
        return EncodedBatch(embeddings, tokens, truncated)

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        vector = np.zeros(self.dimension, np.float64)
        for word in words:
            digest = hashlib.sha256(word.encode()).digest()
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[int.from_bytes(digest[:4], "big") % self.dimension] += sign
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # no words, or words that cancel out: a fixed unit vector
            vector[0], norm = 1.0, 1.0
        return (vector / norm).astype(np.float32)


# Three models, each with words it is "good at"; prices as in the README examples.
MODELS = (
    CandidateModel(model_name="gpt-4o", provider="openai", cost_per_million_tokens=10.0),
    CandidateModel(model_name="gpt-4o-mini", provider="openai", cost_per_million_tokens=0.6),
    CandidateModel(
        model_name="claude-3-5-sonnet", provider="anthropic", cost_per_million_tokens=9.0
    ),
)
TOPICS: Mapping[str, str] = {
    "gpt-4o": "prove theorem integral equation math",
    "gpt-4o-mini": "hello thanks weather chat today",
    "claude-3-5-sonnet": "python function code bug refactor",
}
SAMPLE_PROMPTS = (
    "prove this theorem about an integral",
    "hello, thanks for the chat today",
    "fix the bug in my python function",
)


def router_onnx(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """``quality = sigmoid(embedding @ weights + bias)``: [batch, dim] -> [batch, models]."""
    dim, models = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["embedding", "weights"], ["logits_raw"]),
            helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["quality"]),
        ],
        "fake_router",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("quality", TensorProto.FLOAT, ["batch", models])],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "weights"),
            numpy_helper.from_array(bias.astype(np.float32), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def write_bundle(
    parent: Path,
    encoder: FakeEncoder,
    *,
    version: str,
    router_type: str = "fake",
    models: Sequence[CandidateModel] = MODELS,
    topics: Mapping[str, str] = TOPICS,
    scale: float = 4.0,
    default_cost_weight: float = 0.05,
    identity: EncoderIdentity | None = None,
) -> Path:
    """Write a valid bundle for ``encoder`` under ``parent/version`` and return its path.

    ``identity``: the encoder the manifest says it was trained on (default: ``encoder``'s).
    """
    directory = Path(parent) / version
    directory.mkdir(parents=True)
    weights = np.stack(
        [encoder.encode([topics[m.model_name]]).embeddings[0] for m in models], axis=1
    )
    router_path = directory / "router.onnx"
    router_path.write_bytes(router_onnx(scale * weights, np.zeros(len(models), np.float32)))
    graph = RouterGraph(
        file="router.onnx",
        input_name="embedding",
        output_name="quality",
        input_dim=encoder.dimension,
        output_dim=len(models),
    )
    head = OnnxRouterHead(router_path, graph)
    embeddings = encoder.encode(list(SAMPLE_PROMPTS)).embeddings
    quality = head.predict(embeddings)
    manifest = BundleManifest(
        bundle_version=version,
        router_type=router_type,
        strategy_name=f"routeiq-{router_type}",
        created_utc="2026-01-01T00:00:00Z",
        candidates=list(models),
        default_cost_weight=default_cost_weight,
        encoder=identity or encoder.identity,
        router=graph,
        files={"router.onnx": sha256_file(router_path)},
        parity_tolerance=1e-5,
        encoder_tolerance=1e-3,
        samples=[
            Sample(prompt=p, embedding=[float(v) for v in e], quality=[float(v) for v in q])
            for p, e, q in zip(SAMPLE_PROMPTS, embeddings, quality, strict=True)
        ],
    )
    (directory / BUNDLE_MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return directory
