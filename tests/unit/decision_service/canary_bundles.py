"""Bundles that are valid (they load and replay their manifest samples exactly) but are bad
at serving time: a real property of the ONNX graph, as a broken export would have.

Both take any valid bundle (the fake one of the unit tests, or a trained KNN) and add a
term to its router output that is exactly zero for the manifest's samples:

* ``with_nan_for_unseen_prompts``: ``sqrt(x - 0.5) - sqrt(x - 0.5)`` with ``x = E @ u``,
  where ``u`` maps every sample embedding to 1. Zero for the samples; NaN for a prompt whose
  embedding is not close to the samples' span, i.e. for most real traffic.
* ``with_heavy_graph``: ``0 * sum(tanh(...(outer(h, h) @ M)...))`` over ``rounds`` 256x256
  MatMuls fed from the input (so nothing can be folded away): correct output, slow.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from decision_service.bundle import read_manifest
from decision_service.manifest import BUNDLE_MANIFEST, sha256_file

_RAW = "__canary_raw_quality"


def _rewrite(
    source: Path,
    target: Path,
    version: str,
    gadget: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
) -> Path:
    """Copy ``source`` to ``target`` with ``quality = raw + gadget_out`` and a new version."""
    shutil.copytree(Path(source).resolve(), target)
    manifest = read_manifest(target)
    router = target / manifest.router.file
    model = onnx.load(str(router))
    output = manifest.router.output_name
    for node in model.graph.node:
        node.output[:] = [_RAW if name == output else name for name in node.output]
        node.input[:] = [_RAW if name == output else name for name in node.input]
    model.graph.node.extend([*gadget, helper.make_node("Add", [_RAW, "gadget_out"], [output])])
    model.graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    router.write_bytes(model.SerializeToString())
    files = {**manifest.files, manifest.router.file: sha256_file(router)}
    updated = manifest.model_copy(update={"bundle_version": version, "files": files})
    (target / BUNDLE_MANIFEST).write_text(updated.model_dump_json(indent=2))
    return target


def _sample_embeddings(source: Path) -> np.ndarray:
    manifest = read_manifest(source)
    return np.asarray([s.embedding for s in manifest.samples], dtype=np.float64)


def with_nan_for_unseen_prompts(source: Path, target: Path, version: str) -> Path:
    samples = _sample_embeddings(source)
    u = np.linalg.pinv(samples) @ np.ones(len(samples))  # samples @ u == 1
    name = read_manifest(source).router.input_name
    nodes = [
        helper.make_node("MatMul", [name, "nan_u"], ["nan_x"]),
        helper.make_node("Sub", ["nan_x", "nan_half"], ["nan_d"]),
        helper.make_node("Sqrt", ["nan_d"], ["nan_r"]),
        helper.make_node("Sub", ["nan_r", "nan_r"], ["gadget_out"]),
    ]
    inits = [
        numpy_helper.from_array(u.reshape(-1, 1).astype(np.float32), "nan_u"),
        numpy_helper.from_array(np.array([0.5], np.float32), "nan_half"),
    ]
    return _rewrite(source, target, version, nodes, inits)


def with_heavy_graph(source: Path, target: Path, version: str, rounds: int = 24) -> Path:
    manifest = read_manifest(source)
    dim, width = manifest.router.input_dim, 256
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("MatMul", [manifest.router.input_name, "heavy_p"], ["heavy_hp"]),
        helper.make_node("Tanh", ["heavy_hp"], ["heavy_h"]),
        helper.make_node("Transpose", ["heavy_h"], ["heavy_ht"], perm=[1, 0]),
        helper.make_node("MatMul", ["heavy_ht", "heavy_h"], ["heavy_y0"]),
    ]
    for i in range(rounds):
        nodes += [
            helper.make_node("MatMul", [f"heavy_y{i}", "heavy_m"], [f"heavy_z{i}"]),
            helper.make_node("Tanh", [f"heavy_z{i}"], [f"heavy_y{i + 1}"]),
        ]
    nodes += [
        helper.make_node("ReduceSum", [f"heavy_y{rounds}"], ["heavy_sum"], keepdims=1),
        helper.make_node("Mul", ["heavy_sum", "heavy_zero"], ["gadget_out"]),
    ]
    inits = [
        numpy_helper.from_array(rng.standard_normal((dim, width)).astype(np.float32), "heavy_p"),
        numpy_helper.from_array(
            (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), "heavy_m"
        ),
        numpy_helper.from_array(np.zeros((1, 1), np.float32), "heavy_zero"),
    ]
    return _rewrite(source, target, version, nodes, inits)
