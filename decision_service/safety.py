"""Checks that keep untrusted artifacts from executing code or reading outside their folder.

Serving never unpickles anything. These checks refuse a bundle that even carries a
pickle, and an ONNX graph whose tensors point at external files outside its own folder.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import uses_external_data

from .errors import RouteIQError

_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".bin", ".npy"}
# Pickle protocols 2-5 start with PROTO (0x80) then the protocol number; zip-wrapped
# torch checkpoints start with "PK" and carry a pickle inside.
_PICKLE_MAGIC = tuple(bytes([0x80, n]) for n in range(2, 6))


def looks_like_pickle(path: Path) -> bool:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        return True
    with path.open("rb") as fh:
        head = fh.read(2)
    return head in _PICKLE_MAGIC


def refuse_unsafe_onnx(path: Path, root: Path, *, error: type[RouteIQError]) -> None:
    """Refuse ``path`` if it is not an ONNX model or references data outside ``root``."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several unrelated types for a corrupt file
        raise error(f"{path.name} is not a readable ONNX model: {exc}") from exc
    root = root.resolve()
    for tensor in _all_initializers(model):
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (path.parent / location).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise error(
                f"{path.name} references external data {location!r} outside its folder; "
                "only self-contained ONNX files are served"
            )


def _all_initializers(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    return tensors
