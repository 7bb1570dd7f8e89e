"""The registry and telemetry subcommands of ``python -m trainer``."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from decision_service.bundle_registry import Gate, GateRefused, Registry, RegistryError, open_store
from decision_service.bundle_registry.notify import DEFAULT_PREFIX, RedisKeys, announce


def _registry(args: argparse.Namespace) -> Registry:
    return Registry(open_store(args.registry, endpoint_url=args.s3_endpoint), args.name)


def run_registry_command(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        if args.command == "publish":
            version = registry.publish(args.bundle)
            print(f"published {version} to {registry.store.uri}/{registry.name}")
            if args.promote:
                _promote(registry, args, version, args.promote)
        elif args.command == "promote":
            _promote(registry, args, args.version, args.channel)
        elif args.command == "rollback":
            pointer = registry.rollback(args.channel, reason=args.reason)
            print(f"{args.channel} -> {pointer['version']} (rolled back)")
            _announce(registry, args.channel, pointer)
        elif args.command == "pull":
            target = registry.pull(args.channel, args.dest)
            print(f"{args.dest / 'current'} -> {target.name}")
        elif args.command == "versions":
            channels = {}
            for key in registry.store.list(f"{registry.name}/channels/"):
                channel = Path(key).stem
                channels[channel] = registry.channel_version(channel)
            print(json.dumps({"versions": registry.versions(), "channels": channels}, indent=2))
    except GateRefused as exc:
        print(f"gate refused: {exc}")
        return 3
    except RegistryError as exc:
        print(f"registry error: {exc}")
        return 2
    return 0


def _promote(registry: Registry, args: argparse.Namespace, version: str, channel: str) -> None:
    pointer = registry.promote(
        version,
        channel,
        gate=Gate(metric=args.metric, floor=args.floor),
        force=args.force,
        reason=args.reason,
    )
    forced = " (forced past the gate)" if pointer["forced"] else ""
    print(f"{channel} -> {version}{forced}")
    _announce(registry, channel, pointer)


def _announce(registry: Registry, channel: str, pointer: dict[str, object]) -> None:
    """Wake the sync agents through Redis when ROUTEIQ_REDIS_URL is set.

    A failure is a warning, not an error: the channel already moved in the store, and agents
    that miss the message find it on their next poll.
    """
    url = os.environ.get("ROUTEIQ_REDIS_URL")
    if not url:
        return
    import redis

    keys = RedisKeys(registry.name, os.environ.get("ROUTEIQ_REDIS_PREFIX") or DEFAULT_PREFIX)
    try:
        receivers = announce(url, keys, channel, pointer)
    except redis.RedisError as exc:
        print(f"warning: could not notify sync agents through Redis ({exc}); they will poll")
        return
    print(f"notified {receivers} sync agent(s) through Redis")


def run_telemetry_command(args: argparse.Namespace) -> int:
    from trainer.sources.telemetry import read_jaeger, read_otlp_json, write_examples

    if bool(args.jaeger) == bool(args.otlp):
        print("give exactly one of --jaeger URL or --otlp FILE...")
        return 2
    if args.jaeger:
        end = int(time.time() * 1e6)
        examples, report = read_jaeger(
            args.jaeger,
            service=args.service,
            start_us=end - int(args.since_hours * 3600 * 1e6),
            end_us=end,
            page_size=args.page_size,
        )
    else:
        examples, report = read_otlp_json(args.otlp)
    write_examples(examples, args.out)
    print(json.dumps(report.as_dict(), indent=2))
    print(f"{len(examples)} examples written to {args.out}")
    return 0
