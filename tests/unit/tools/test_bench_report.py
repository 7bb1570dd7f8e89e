"""The bench's pure logic on made-up figures: no load, no timing, nothing asserted about speed."""

from __future__ import annotations

from typing import Any

import pytest

from tools.bench import client, h2load, report
from tools.bench.plan import Plan


def _level(concurrency: int, rps: float, p99: float, errors: int = 0) -> dict[str, float]:
    return {
        "concurrency": concurrency,
        "throughput_rps": rps,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "p999_ms": p99,
        "errors": errors,
    }


LEVELS = [_level(1, 90, 8), _level(2, 160, 9.5), _level(4, 175, 30), _level(8, 176, 60)]


def test_hpa_sizing_takes_the_fastest_level_within_the_bar_per_core() -> None:
    strict = report.hpa_sizing(LEVELS, cpus=2, p99_ms=10)
    assert strict is not None
    assert (strict["concurrency"], strict["rps_per_core"]) == (2, 80)
    user = report.hpa_sizing(LEVELS, cpus=2, p99_ms=50)
    assert user is not None and user["concurrency"] == 4
    assert report.hpa_sizing(LEVELS, cpus=2, p99_ms=5) is None
    assert report.hpa_sizing([_level(1, 90, 8, errors=1)], cpus=2, p99_ms=10) is None


def _config(
    p99_short: float,
    *,
    default: bool = False,
    long_p50: float = 6.0,
    health_max: float = 20.0,
    health_failed: int = 0,
    serving_ms: float = 1200.0,
    rss_warm: float = 180.0,
) -> dict[str, Any]:
    klass = {"p50_ms": 5.0, "p99_ms": p99_short, "n": 10, "tokens": [8, 16]}
    grpc_klass = {"client": {"p50_ms": 6.0, "p99_ms": p99_short, "p999_ms": 12.0}}
    long_klass = {"client": {"p50_ms": long_p50, "p99_ms": long_p50, "p999_ms": long_p50}}
    health = {
        "n": 40,
        "p50_ms": 3.0,
        "p99_ms": health_max,
        "p999_ms": health_max,
        "mean_ms": 4.0,
        "max_ms": health_max,
        "failed": health_failed,
        "interval_ms": 50.0,
    }
    return {
        "default": default,
        "startup": {
            "starts": 3,
            "serving_ms": [serving_ms] * 3,
            "serving_ms_median": serving_ms,
            "serving_ms_max": serving_ms,
            "rss_mb_warm": [rss_warm] * 3,
            "rss_mb_warm_median": rss_warm,
        },
        "encoder_dir": "e",
        "bundle_dir": "b",
        "in_process": {
            **{k: klass for k in ("short", "paragraph", "long_code")},
            "batch32_short_qps": 250.0,
            "threads_short_qps": 200.0,
            "threads": 2,
        },
        "grpc": {
            **{k: grpc_klass for k in ("short", "paragraph")},
            "long_code": long_klass,
            "levels_short": LEVELS,
            "health_saturated": {"route": _level(16, 170, 90), "health": health},
            "sweep_service_cores": 1.9,
            "rss_mb": 200.0,
            "rss_mb_after_load": 210.0,
            "litellm": {
                "picks": 10,
                "candidates": 5,
                **{
                    f"{p}_{q}_ms": 0.05
                    for p in ("route", "strategy", "no_rpc", "open")
                    for q in ("p50", "p99")
                },
                "added_p50_ms": 0.4,
            },
        },
        "rss": {
            "encoder": "x/fp32",
            "versions_loaded": [{"version": v, "router_type": "knn"} for v in "abc"],
            "rss_mb_one_bundle": 210.0,
            "rss_mb_three_bundles": 230.0,
        },
    }


def test_summary_marks_each_target_and_recommends_the_faster_process_model() -> None:
    model = {
        "model": "reuseport",
        "description": "2 processes",
        "levels_short": LEVELS,
        "saturation": LEVELS[-1],
        "rss_mb_total": 400.0,
        "service_cpu_s": [1.0, 1.0],
    }
    results: dict[str, Any] = {
        "machine": {"cpus": 2},
        "configs": {
            "int8-t128": _config(p99_short=9.0, default=True),
            # long prompts 60/40 = 1.5x the seeds, a probe failed, slow start, too much memory
            "fp32": _config(
                p99_short=12.0, long_p50=40.0, health_failed=1, serving_ms=3500.0, rss_warm=260.0
            ),
        },
        "seeds": {k: {"p50_ms": 60.0, "p99_ms": 70.0} for k in ("short", "paragraph", "long_code")}
        | {"train_rows": 5},
        "process_model": {
            "config": "int8-t128",
            "best": "reuseport",
            "models": [model, {"model": "threads", "description": "d", "error": "no"}],
        },
    }
    report.summarize(results)
    met = {name: [t["met"] for t in c["targets"]] for name, c in results["configs"].items()}
    # p99 short, saturation (176/200), seeds short (60/6), strategy adds, open breaker,
    # seeds long (60/6 vs 60/40), health under saturation, cold start, RSS after warm-up
    assert met == {
        "int8-t128": [True] * 9,
        "fp32": [False, True, True, True, True, False, False, False, False],
    }
    names = [t["target"] for t in results["configs"]["fp32"]["targets"]]
    assert names[5:] == [
        ">= 2x lower p50 than the seeds (256 tok)",
        "Health/Check max under saturation < 100ms",
        "cold start to SERVING <= 3 s (median)",
        "RSS per replica after warm-up <= 224 MB",
    ]
    assert results["configs"]["fp32"]["targets"][6]["value"] == float("inf")
    rec = results["recommendation"]
    # the default configuration, not the first one listed nor the fastest, is recommended
    assert (rec["config"], rec["process_model"]) == ("int8-t128", "reuseport")
    assert rec["hpa"][report.hpa_key(10)]["rps"] == 160
    text = report.render(results)
    assert "size the HPA at 80 requests/s per core for p99 <= 10 ms" in text
    assert "NOT MET" in text and "not measured: no" in text
    table = text[text.index("== BRIEF §4 targets") :].splitlines()
    assert "judged on the default configuration, int8-t128" in table[0]
    assert "int8-t128 (default)" in table[1]
    # every target, plus one line per configuration under the saturation row
    assert len(table) == 2 + 9 + 2
    rows = {line[:44].strip(): line[44:] for line in table[2:]}
    assert rows["cold start to SERVING <= 3 s (median)"].split() == [
        "1.20", "s", "MET", "3.50", "s", "NOT", "MET"
    ]  # fmt: skip
    assert rows["RSS per replica after warm-up <= 224 MB"].split()[:3] == ["180", "MB", "MET"]
    assert "20.000 ms MET" in rows["Health/Check max under saturation < 100ms"]
    assert "Health/Check while Route is saturated (concurrency 16" in text
    assert "cold start, spawn to SERVING (3 starts): median 1.20 s" in text


def _h2load_level(streams: int, rps: float, cores: float, errors: int = 0) -> dict[str, Any]:
    return {
        "concurrency": streams,
        "throughput_rps": rps,
        "errors": errors,
        "service_cores": cores,
        "h2load_cores": 0.03,
        "mean_ms": 5.0,
        "max_ms": 40.0,
    }


def _saturation_results(h2load: dict[str, Any]) -> dict[str, Any]:
    """In process 200 q/s; the Python client peaks at 140 q/s (0.70x), using 1.3 cores."""
    config = _config(p99_short=9.0, default=True)
    python_levels = [
        {**_level(1, 90, 8), "service_cores": 0.8, "client_cores": 0.3},
        {**_level(8, 140, 30), "service_cores": 1.3, "client_cores": 0.6},
        {**_level(16, 130, 60), "service_cores": 1.3, "client_cores": 0.65},
    ]
    config["grpc"].update(levels_short=python_levels, sweep_client_cores=0.5, h2load=h2load)
    return {"machine": {"cpus": 2}, "configs": {"int8-t128": config}}


def test_saturation_is_judged_on_h2load_and_the_python_figure_is_printed_beside_it() -> None:
    h2load = {
        "available": True,
        "levels": [
            _h2load_level(1, 100, 0.9),
            _h2load_level(8, 170, 1.7, errors=2),
            _h2load_level(16, 165, 1.7),
        ],
    }
    results = _saturation_results(h2load)
    report.summarize(results)
    config = results["configs"]["int8-t128"]
    sat = config["saturation"]
    assert (sat["generator"], sat["ratio"]) == ("h2load", 170 / 200)
    assert (sat["h2load"]["concurrency"], sat["h2load"]["service_cores"]) == (8, 1.7)
    assert (sat["python_client"]["ratio"], sat["python_client"]["service_cores"]) == (0.7, 1.3)
    row = config["targets"][1]
    assert (row["target"], row["value"], row["met"]) == (report.SATURATION_ROW, 0.85, True)
    assert config["ratios"]["grpc_saturation_over_inprocess_threads"] == 0.7
    assert config["ratios"]["h2load_saturation_over_inprocess_threads"] == 0.85
    text = report.render(results)
    table = text[text.index("== BRIEF §4 targets") :].splitlines()
    under = table[table.index(next(t for t in table if report.SATURATION_ROW in t)) + 1]
    assert "judged on h2load 170.0 q/s at 8 streams (2 errors; service 1.70 cores" in under
    assert "Python client 140.0 q/s at 8 (0.70x; service 1.30 cores, client 0.60" in under
    assert "in process 200.0 q/s" in under
    assert "gRPC from h2load" in text


def test_saturation_falls_back_to_the_python_client_without_h2load() -> None:
    results = _saturation_results({"available": False, "reason": h2load.MISSING})
    report.summarize(results)
    config = results["configs"]["int8-t128"]
    sat = config["saturation"]
    assert (sat["generator"], sat["ratio"], sat["h2load"]) == ("python-client", 0.7, None)
    assert (config["targets"][1]["value"], config["targets"][1]["met"]) == (0.7, False)
    assert "h2load_saturation_over_inprocess_threads" not in config["ratios"]
    text = report.render(results)
    assert f"gRPC from h2load: not measured, {h2load.MISSING}" in text
    under = [line for line in text.splitlines() if line.startswith("    int8-t128: ")]
    assert under == [
        f"    int8-t128: {h2load.MISSING}; judged on the Python client 140.0 q/s at 8 (0.70x; "
        "service 1.30 cores, client 0.60), in process 200.0 q/s"
    ]


def test_sweep_stops_after_two_levels_that_add_too_little(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rates = {1: 100.0, 2: 180.0, 4: 185.0, 8: 300.0, 16: 301.0, 32: 290.0, 64: 500.0}

    async def fake_level(
        address: str, klass: str, concurrency: int, seconds: float, connections: int | None
    ) -> dict[str, float]:
        return _level(concurrency, rates[concurrency], 1.0)

    monkeypatch.setattr(client, "_level", fake_level)
    swept = client.sweep("127.0.0.1:1", "short", list(rates), 0.1, until_flat=0.05)
    assert [lv["concurrency"] for lv in swept] == [1, 2, 4, 8, 16, 32]
    every = client.sweep("127.0.0.1:1", "short", list(rates), 0.1)
    assert len(every) == len(rates)


def test_quick_plan_is_smaller_and_seconds_override_both_sweeps() -> None:
    quick, full = Plan.quick(), Plan()
    assert quick.sequential["short"] < full.sequential["short"]
    assert quick.overhead_picks < full.overhead_picks
    assert Plan().with_seconds(2.0).model_seconds == 2.0
