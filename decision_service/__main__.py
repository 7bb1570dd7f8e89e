"""python -m decision_service --bundle DIR [--encoder DIR] [--port N]"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import RouteIQError
from .server import serve
from .settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m decision_service",
        description="RouteIQ decision service: ranks candidate deployments over gRPC. "
        "Every option also reads ROUTEIQ_<NAME> from the environment.",
    )
    parser.add_argument("--bundle", dest="bundle_dir", type=Path, help="router bundle directory")
    parser.add_argument("--encoder", dest="encoder_dir", type=Path, help="encoder directory")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--log-level", dest="log_level")
    parser.add_argument("--metrics-port", dest="metrics_port", type=int)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = ServiceSettings(**overrides)
    except ValueError as exc:
        parser.error(f"invalid settings: {exc}")
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        serve(settings)
    except (RouteIQError, ValueError, OSError) as exc:
        logging.getLogger("decision_service").error("refusing to start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
