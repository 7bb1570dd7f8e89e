"""Routers: embedding float32 [batch, dim] -> predicted quality in [0, 1] per candidate.

Each family fits natively (scikit-learn, torch), exports one self-contained ONNX graph
with input ``embedding`` and output ``quality``, and is proven equal to its native
predictions at export (``export_with_parity``).
"""

from trainer.routers.base import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportedRouter,
    Router,
    RouterParityError,
    export_with_parity,
)
from trainer.routers.knn import KnnRouter
from trainer.routers.mf import MfRouter
from trainer.routers.mlp import MlpRouter
from trainer.routers.svm import SvmRouter

ROUTER_TYPES = ("knn", "svm", "mlp", "mf")


def make_router(router_type: str, *, seed: int = 0, **params: object) -> Router:
    if router_type == "knn":
        return KnnRouter.from_params(params)
    if router_type == "mlp":
        return MlpRouter.from_params(params, seed=seed)
    if router_type == "svm":
        return SvmRouter.from_params(params, seed=seed)
    if router_type == "mf":
        return MfRouter.from_params(params, seed=seed)
    raise ValueError(f"unknown router type {router_type!r}; choose from {ROUTER_TYPES}")


__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ROUTER_TYPES",
    "ExportedRouter",
    "KnnRouter",
    "MfRouter",
    "MlpRouter",
    "Router",
    "RouterParityError",
    "SvmRouter",
    "export_with_parity",
    "make_router",
]
