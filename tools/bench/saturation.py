"""The saturation target: which load generator it is judged on, and the printed lines.

``make bench`` sweeps Route with two load generators on the same service: the Python
grpc.aio client (tools.bench.client), which shares the two cores with the service, and
h2load (tools.bench.h2load), a C generator that leaves the service most of them. The target
is judged on h2load when it ran and falls back to the Python client when it did not; both
figures are kept and printed, each with the service cores it used. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Figures = Mapping[str, Any]


def peak(levels: Sequence[Figures]) -> Figures:
    """The level with the highest throughput."""
    return max(levels, key=lambda lv: lv["throughput_rps"])


def saturation_figures(config: Figures) -> dict[str, Any]:
    """The saturation target's figure and what it was judged on.

    Judged on the h2load sweep (tools.bench.h2load: a C load generator, so the service gets
    the cores the Python client would burn) when it ran; else on the Python client's sweep.
    Both are kept, with the service cores each level used, so a reader sees both."""
    ip_rps, grpc = config["in_process"]["threads_short_qps"], config["grpc"]
    best = peak(grpc["levels_short"])
    python = {
        "generator": "python-client",
        "rps": best["throughput_rps"],
        "concurrency": best["concurrency"],
        "ratio": best["throughput_rps"] / ip_rps,
        # per level when measured; older results only have the whole sweep's figure
        "service_cores": best.get("service_cores", grpc.get("sweep_service_cores")),
        "client_cores": best.get("client_cores", grpc.get("sweep_client_cores")),
    }
    h2 = grpc.get("h2load") or {"available": False, "reason": "h2load sweep not run"}
    out: dict[str, Any] = {"in_process_rps": ip_rps, "python_client": python, "h2load": None}
    if h2["available"]:
        top = peak(h2["levels"])
        out["h2load"] = {
            "generator": "h2load",
            "rps": top["throughput_rps"],
            "concurrency": top["concurrency"],
            "ratio": top["throughput_rps"] / ip_rps,
            "errors": top["errors"],
            "service_cores": top["service_cores"],
            "client_cores": top["h2load_cores"],
        }
    else:
        out["h2load_missing"] = h2["reason"]
    judged = out["h2load"] or python
    out["generator"], out["ratio"] = judged["generator"], judged["ratio"]
    return out


def h2load_levels(h2: Figures) -> list[str]:
    if not h2["available"]:
        return [f"  gRPC from h2load: not measured, {h2['reason']}"]
    lines = [
        "  gRPC from h2load (C; one connection, N streams in flight; q/s = successful Route "
        "decisions counted by the service's metrics; latency as h2load prints it):",
        f"  {'streams':>11} {'q/s':>8} {'mean ms':>8} {'max ms':>8} {'errors':>6} "
        f"{'service cores':>13} {'h2load cores':>12}",
    ]
    for lv in h2["levels"]:
        lines.append(
            f"  {lv['concurrency']:>11} {lv['throughput_rps']:8.1f} {lv['mean_ms']:8.2f} "
            f"{lv['max_ms']:8.2f} {lv['errors']:>6.0f} {lv['service_cores']:13.2f} "
            f"{lv['h2load_cores']:12.2f}"
        )
    return lines


def saturation_line(name: str, sat: Figures) -> str:
    """Under the saturation row: what it was judged on, and the other generator's figure."""

    def cores(x: float | None) -> str:
        return "?" if x is None else f"{x:.2f}"

    py, h2 = sat["python_client"], sat["h2load"]
    python = (
        f"Python client {py['rps']:.1f} q/s at {py['concurrency']} ({py['ratio']:.2f}x; "
        f"service {cores(py['service_cores'])} cores, client {cores(py['client_cores'])})"
    )
    if h2 is None:
        return (
            f"    {name}: {sat['h2load_missing']}; judged on the {python}, in process "
            f"{sat['in_process_rps']:.1f} q/s"
        )
    return (
        f"    {name}: judged on h2load {h2['rps']:.1f} q/s at {h2['concurrency']} streams "
        f"({h2['errors']:.0f} errors; service {cores(h2['service_cores'])} cores, h2load "
        f"{cores(h2['client_cores'])}) / in process {sat['in_process_rps']:.1f} q/s; {python}"
    )
