from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

# LiteLLM fetches its model cost map from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

if TYPE_CHECKING:
    from litellm import Router

    from .fakes import FakeClient


@pytest.fixture
def router() -> Router:
    """The fake group's router (LiteLLM imported here: the tests that need no router do not pay
    for its import)."""
    from litellm import Router

    from .fakes import MODEL_LIST

    return Router(model_list=MODEL_LIST, num_retries=0)


@pytest.fixture
def client() -> FakeClient:
    from .fakes import FakeClient

    return FakeClient()
