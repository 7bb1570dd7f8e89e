"""Routing-quality benches on RouteLLM-format data: `make bench-quality`, `make bench-encoder`."""
