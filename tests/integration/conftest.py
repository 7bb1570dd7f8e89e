"""Fixtures that start real servers on free loopback ports and tear them down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import DecisionServiceProcess


@pytest.fixture(scope="module")
def decision_server(knn_bundle_dir: Path, encoder_dir: Path) -> Iterator[DecisionServiceProcess]:
    """The decision service serving the KNN bundle; ``stop()``/``start()`` keep its port."""
    server = DecisionServiceProcess(knn_bundle_dir, encoder_dir).start()
    try:
        yield server
    finally:
        server.stop()
