"""Decision-service unit fixtures: the fake encoder and two small bundles written for it.

No torch, no exported MiniLM: the exported encoder is for tests/integration.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from decision_service.bundle import RouterBundle, load_bundle

from ..fakes import TOPICS, FakeEncoder, write_bundle

# "beta" swaps two models' topics, so the two versions rank some prompts differently.
BETA_TOPICS = {
    **TOPICS,
    "gpt-4o": TOPICS["claude-3-5-sonnet"],
    "claude-3-5-sonnet": TOPICS["gpt-4o"],
}


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def bundle_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    parent = tmp_path_factory.mktemp("fake-bundles")
    encoder = FakeEncoder()
    return {
        "alpha": write_bundle(parent, encoder, version="alpha-1", router_type="alpha"),
        "beta": write_bundle(
            parent, encoder, version="beta-1", router_type="beta", topics=BETA_TOPICS
        ),
    }


@pytest.fixture
def bundles(bundle_dirs: dict[str, Path], encoder: FakeEncoder) -> dict[str, RouterBundle]:
    return {name: load_bundle(path, encoder) for name, path in bundle_dirs.items()}
