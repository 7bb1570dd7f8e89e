"""Small clustered routing data for router tests: labels depend on the cluster."""

from __future__ import annotations

import numpy as np

# Per cluster, the chance that each of three models answers well.
CLUSTER_QUALITY = np.array([[0.9, 0.2, 0.5], [0.1, 0.9, 0.5], [0.5, 0.5, 0.9], [0.9, 0.9, 0.1]])


def unit_rows(rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors around four centres, 0/1 labels drawn from ``CLUSTER_QUALITY``, and each
    row's true quality (seeded: the same rows every time)."""
    rng = np.random.default_rng(0)
    centres = unit_rows(4, 32, rng)
    cluster = rng.integers(0, 4, size=rows)
    x = centres[cluster] + 0.3 * unit_rows(rows, 32, rng)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    quality = CLUSTER_QUALITY[cluster]
    y = (rng.random((rows, 3)) < quality).astype(np.float32)
    return x, y, quality
