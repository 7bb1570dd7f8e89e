"""Runnable tools around the product, never imported by it: the demo (`make demo`), a local
service runner shared by the demo, the benches and the integration tests, and the benches
(`make bench`, `make bench-gateway`, `make bench-quality`, `make bench-encoder`)."""
