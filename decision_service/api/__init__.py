"""The routeiq.decision.v1 API: generated stubs (see proto/generate.py)."""
