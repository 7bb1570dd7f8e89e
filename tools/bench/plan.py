"""How much load each part of `make bench` sends: the full run, and ``--quick`` for smoke runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

LEVELS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Plan:
    seconds: float = 4.0  # per concurrency level of the gRPC sweeps
    levels: tuple[int, ...] = LEVELS  # rising until throughput flattens (see until_flat)
    until_flat: float = 0.05  # a level must add 5% over the best so far, or the sweep stops
    sequential: dict[str, int] = field(
        default_factory=lambda: {"short": 400, "paragraph": 150, "long_code": 60}
    )
    overhead_picks: int = 500  # LiteLLM strategy: picks per path
    seeds_train_rows: int = 600
    seeds_min_requests: int = 30  # per prompt class (a long prompt takes ~1 s the seeds' way)
    model_seconds: float = 3.0  # per level of the process-model sweeps
    model_rounds: int = 6  # interleaved rounds of the concurrency-model comparison
    model_sequential: int = 200  # sequential short prompts per model and round
    batched_sweep: bool = True
    health_seconds: float = 8.0  # Route saturated while Health/Check is probed
    starts: int = 5  # cold starts per configuration (median reported)

    @classmethod
    def quick(cls) -> Plan:
        """Every code path, a small fraction of the load: figures are not meaningful."""
        return cls(
            seconds=1.0,
            levels=(1, 4, 16),
            sequential={"short": 40, "paragraph": 15, "long_code": 6},
            overhead_picks=50,
            seeds_train_rows=100,
            seeds_min_requests=3,
            model_seconds=1.0,
            model_rounds=2,
            model_sequential=40,
            batched_sweep=False,
            health_seconds=2.0,
            starts=2,
        )

    def with_seconds(self, seconds: float | None) -> Plan:
        return self if seconds is None else replace(self, seconds=seconds, model_seconds=seconds)
