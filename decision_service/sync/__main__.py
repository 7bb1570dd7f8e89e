"""routeiq-sync-agent / python -m decision_service.sync: keep a pod's bundle on its channel."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from prometheus_client import start_http_server

from .agent import SyncAgent
from .settings import SyncSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="routeiq-sync-agent",
        description="Sync a registry channel's router bundle and its encoder into MODELS_DIR "
        "(verified, then swapped atomically). Every option also reads ROUTEIQ_<NAME>.",
    )
    parser.add_argument("--registry", help="dir, file:///dir or s3://bucket/prefix")
    parser.add_argument("--channel")
    parser.add_argument("--models-dir", dest="models_dir", type=Path)
    parser.add_argument("--redis-url", dest="redis_url")
    parser.add_argument("--log-level", dest="log_level")
    parser.add_argument(
        "--once",
        action="store_true",
        help="one pass, then exit 0 when MODELS_DIR holds the channel's version (init container)",
    )
    args = vars(parser.parse_args(argv))
    once = args.pop("once")
    try:
        settings = SyncSettings(**{k: v for k, v in args.items() if v is not None})
    except ValueError as exc:
        parser.error(f"invalid settings: {exc}")
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        agent = SyncAgent(settings)
    except (ValueError, OSError) as exc:
        logging.getLogger("decision_service.sync").error("refusing to start: %s", exc)
        return 2
    if once:
        return 0 if agent.attempt() is not None else 1
    if settings.sync_metrics_port is not None:
        start_http_server(
            settings.sync_metrics_port,
            addr=settings.sync_metrics_host,
            registry=agent.metrics.registry,
        )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
