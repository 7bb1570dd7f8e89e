"""Decoding the fields of decision events that every telemetry source reads: finite
numbers, and a decision's served model and query embedding (from its JSON payload, else the
event's int8 attributes)."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping

import numpy as np

ATTR_EMBEDDING_INT8 = "routeiq.query_embedding.int8_b64"
ATTR_EMBEDDING_SCALE = "routeiq.query_embedding.scale"


def finite(value: object) -> bool:
    return finite_number(value) is not None


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a finite JSON number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def decision_features(
    payload: Mapping[str, object], attributes: Mapping[str, object]
) -> tuple[str, np.ndarray] | str:
    """A decision event's served model and query embedding (from the payload, else the
    event's int8 attributes), or the reason it has none."""
    model = payload.get("selected_deployment")
    if not isinstance(model, str) or not model:
        return "no_selected_model"
    embedding = _embedding(payload.get("query_embedding"))
    if embedding is None:
        embedding = _attribute_embedding(attributes)
    if embedding is None:
        return "no_features"  # the service ran without telemetry_embedding
    return model, embedding


def _embedding(value: object) -> np.ndarray | None:
    if isinstance(value, dict):
        scale, values = finite_number(value.get("scale")), value.get("values")
        if scale is None or not isinstance(values, list):
            return None
        if not values or not all(isinstance(v, int) and -128 <= v <= 127 for v in values):
            return None
        return (np.asarray(values, np.float32) * np.float32(scale)).astype(np.float32)
    if isinstance(value, list) and value and all(finite(v) for v in value):
        return np.asarray(value, np.float32)
    return None


def _attribute_embedding(attributes: Mapping[str, object]) -> np.ndarray | None:
    packed, scale = attributes.get(ATTR_EMBEDDING_INT8), attributes.get(ATTR_EMBEDDING_SCALE)
    if isinstance(scale, str):  # OTLP JSON may carry numbers as strings
        try:
            scale = float(scale)
        except ValueError:
            return None
    number = finite_number(scale)
    if not isinstance(packed, str) or number is None:
        return None
    try:
        values = np.frombuffer(base64.b64decode(packed, validate=True), dtype=np.int8)
    except (ValueError, binascii.Error):
        return None
    if values.size == 0:
        return None
    return (values.astype(np.float32) * np.float32(number)).astype(np.float32)
