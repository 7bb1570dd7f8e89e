"""Routers: embedding float32 [batch, dim] -> predicted quality in [0, 1] per candidate.

Each family fits natively (scikit-learn, torch), exports one self-contained ONNX graph
with input ``embedding`` and output ``quality``, and is proven equal to its native
predictions at export (``export_with_parity``).

``ROUTER_TYPES`` is defined here without importing any family, so ``python -m trainer``
can offer the names (``--router`` choices, ``--help``, the registry commands) without
loading torch or scikit-learn; every other name is imported on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.routers.base import (
        INPUT_NAME,
        OUTPUT_NAME,
        ExportedRouter,
        Router,
        RouterParityError,
        export_with_parity,
    )
    from trainer.routers.blend import BlendRouter
    from trainer.routers.knn import KnnRouter
    from trainer.routers.mf import MfRouter
    from trainer.routers.mlp import MlpRouter
    from trainer.routers.svm import SvmRouter

ROUTER_TYPES = ("knn", "svm", "mlp", "mf", "blend")

# name -> the submodule that defines it, imported on first access (PEP 562).
_LAZY = {
    "INPUT_NAME": "base",
    "OUTPUT_NAME": "base",
    "ExportedRouter": "base",
    "Router": "base",
    "RouterParityError": "base",
    "export_with_parity": "base",
    "BlendRouter": "blend",
    "KnnRouter": "knn",
    "MfRouter": "mf",
    "MlpRouter": "mlp",
    "SvmRouter": "svm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def make_router(router_type: str, *, seed: int = 0, **params: object) -> Router:
    if router_type == "knn":
        from trainer.routers.knn import KnnRouter

        return KnnRouter.from_params(params)
    if router_type == "mlp":
        from trainer.routers.mlp import MlpRouter

        return MlpRouter.from_params(params, seed=seed)
    if router_type == "svm":
        from trainer.routers.svm import SvmRouter

        return SvmRouter.from_params(params, seed=seed)
    if router_type == "mf":
        from trainer.routers.mf import MfRouter

        return MfRouter.from_params(params, seed=seed)
    if router_type == "blend":
        from trainer.routers.blend import BlendRouter

        return BlendRouter.from_params(params, seed=seed)
    raise ValueError(f"unknown router type {router_type!r}; choose from {ROUTER_TYPES}")


__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ROUTER_TYPES",
    "BlendRouter",
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
