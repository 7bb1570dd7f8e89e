"""Every command line deploy/ ships goes through the real CLI that will parse it.

Sources: the Dockerfiles' ENTRYPOINT/CMD and HEALTHCHECK, the compose services'
``entrypoint``/``command`` (image defaults where a service sets none, ``$$`` unescaped), and
every container (init containers included) of every rendered kustomization (the overlays and
``deploy/k8s/keda``) with Kubernetes' rules: ``command`` replaces the image's ENTRYPOINT,
``args`` its CMD (a ``command`` without ``args`` drops CMD), ``$(VAR)`` is expanded from the
container's environment (``env``, ``envFrom`` ConfigMaps, the image's ENV) and an unknown
``$(VAR)`` is an error here (Kubernetes would pass it on literally).

Shell (``sh -c TEXT``, ``sh SCRIPT`` with the script read from the ConfigMap mounted there) is
checked with ``sh -n`` and split into simple commands; ``$VAR``/``${VAR}`` come from the same
environment plus the script's own assignments (a variable neither sets fails the test), and a
command substitution is checked as a script of its own.

Each of our programs is checked by what parses it in production:

* ``routeiq-trainer`` / ``python -m trainer``: ``trainer.cli``'s argparse parser, and the
  registry URI through ``open_store``;
* ``routeiq-decision-service`` / ``python -m decision_service``: its ``main`` with the
  environment set, up to (not including) starting the server: flags and ``ServiceSettings``;
* ``routeiq-sync-agent`` / ``python -m decision_service.sync``: its ``main`` up to (not
  including) building the agent: flags and ``SyncSettings``; the settings it would run with
  are kept for the assertions below;
* ``python -m decision_service.probe``: its one ``HOST:PORT`` argument;
* ``python -c CODE``: compiled;
* ``litellm``: the proxy's click command (``.venv-proxy``), ``make_context`` only.

Third-party programs (Redis, Prometheus, the collector, Jaeger, Grafana, moto's server, POSIX
utilities) are listed in ``THIRD_PARTY`` and must be exactly the ones met, so nothing new is
skipped silently; moto's server flags are exercised by
tests/integration/test_compose_as_processes.py, which runs them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from .conftest import DEPLOY, K8S, OVERLAYS, REPO, kubectl_or_skip

DOCKER = DEPLOY / "docker"
COMPOSE = DEPLOY / "compose" / "docker-compose.yaml"
PROXY_PYTHON = REPO / ".venv-proxy" / "bin" / "python"
KUSTOMIZATIONS = [K8S / "overlays" / name for name in OVERLAYS] + [K8S / "keda"]
IMAGE_DOCKERFILES = {
    "routeiq/decision-service": DOCKER / "decision-service.Dockerfile",
    "routeiq/trainer": DOCKER / "trainer.Dockerfile",
    "routeiq/litellm-gateway": DOCKER / "litellm-gateway.Dockerfile",
}
# Programs we do not own, with what they are; met programs outside this list and ours fail.
THIRD_PARTY = {
    "redis-cli": "redis image healthcheck",
    "moto_server": "S3 stand-in (flags run by test_compose_as_processes)",
    "ls": "POSIX",
    "head": "POSIX",
    "ln": "POSIX",
    "set": "shell builtin",
}
# Images whose entrypoint is not ours: their command is their binary's business.
THIRD_PARTY_IMAGES = {
    "otel/opentelemetry-collector-contrib",
    "prom/prometheus",
    "grafana/grafana",
    "jaegertracing/jaeger",
    "redis",
    "motoserver/moto",
}
SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}
SEPARATORS = {"&&", "||", ";", "|", "(", ")", "{", "}", "&", "!"}
KEYWORDS = {"do", "done", "then", "else", "fi", "if", "while", "until"}
K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
SHELL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")


@dataclass
class Shipped:
    """One command line as a container would exec it."""

    where: str
    argv: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Invocation:
    """One of our programs (or a third-party one) with its final arguments."""

    where: str
    program: str
    args: list[str]
    env: dict[str, str]


# -- reading what deploy/ ships --


def _dockerfile(path: Path) -> dict[str, Any]:
    text = re.sub(r"\\\n", " ", path.read_text())
    info: dict[str, Any] = {"entrypoint": [], "cmd": [], "healthcheck": [], "env": {}}
    final_stage = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            final_stage = True
            info = {**info, "env": {}}  # ENV of the last stage only
        elif op in {"ENTRYPOINT", "CMD"}:
            info[op.lower()] = json.loads(rest)  # exec form only: shell form would wrap sh -c
        elif op == "HEALTHCHECK":
            exec_form = rest[rest.index("CMD") + 3 :].strip()
            info["healthcheck"] = json.loads(exec_form)
        elif op == "ENV" and final_stage:
            info["env"].update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return info


def _image_name(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def dockerfile_commands() -> Iterator[Shipped]:
    for path in sorted(DOCKER.glob("*.Dockerfile")):
        info = _dockerfile(path)
        yield Shipped(f"{path.name} ENTRYPOINT+CMD", info["entrypoint"] + info["cmd"], info["env"])
        if info["healthcheck"]:
            yield Shipped(f"{path.name} HEALTHCHECK", info["healthcheck"], info["env"])


def compose_commands() -> Iterator[Shipped]:
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, service in compose["services"].items():
        image = _image_name(service["image"])
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        health = (service.get("healthcheck") or {}).get("test")
        if health:
            assert health[0] == "CMD", f"compose {name}: use the exec form of healthcheck"
            yield Shipped(f"compose {name} healthcheck", list(health[1:]), env)
        entrypoint = service.get("entrypoint")
        command = service.get("command")
        if image in THIRD_PARTY_IMAGES and entrypoint is None:
            continue  # the image's own binary parses its own flags
        assert image in IMAGE_DOCKERFILES or entrypoint is not None, f"compose {name}: {image}"
        image_info = _dockerfile(IMAGE_DOCKERFILES[image]) if image in IMAGE_DOCKERFILES else {}
        env = {**image_info.get("env", {}), **env}
        if entrypoint is None:
            entrypoint = image_info["entrypoint"]
            if command is None:
                command = image_info["cmd"]
        if isinstance(entrypoint, str):
            entrypoint = shlex.split(entrypoint)
        if isinstance(command, str):
            command = shlex.split(command)
        argv = [part.replace("$$", "$") for part in [*entrypoint, *(command or [])]]
        yield Shipped(f"compose {name}", argv, env)


def render(kustomization: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl_or_skip(), "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj["kind"]
    if kind == "CronJob":
        spec: dict[str, Any] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return spec
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        spec = obj["spec"]["template"]["spec"]
        return spec
    if kind == "Pod":
        spec = obj["spec"]
        return spec
    return None


def k8s_commands(kustomization: Path) -> Iterator[Shipped]:
    objects = render(kustomization)
    configmaps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    label = kustomization.relative_to(K8S)
    for obj in objects:
        spec = _pod_spec(obj)
        if spec is None:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"k8s {label} {obj['kind']}/{obj['metadata']['name']} {c['name']}"
            image = _image_name(c["image"])
            image_info = _dockerfile(IMAGE_DOCKERFILES[image]) if image in IMAGE_DOCKERFILES else {}
            env: dict[str, str] = dict(image_info.get("env", {}))
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    env.update(configmaps[source["configMapRef"]["name"]])
            for item in c.get("env", []):
                if "value" in item:
                    env[item["name"]] = str(item["value"])
                else:
                    env[item["name"]] = f"<{item['name']} from a Secret>"
            files = {}
            for mount in c.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                if "configMap" in volume:
                    for key, text in configmaps[volume["configMap"]["name"]].items():
                        files[f"{mount['mountPath'].rstrip('/')}/{key}"] = text
            if "command" in c:
                argv = [*c["command"], *c.get("args", [])]
            else:
                assert image in IMAGE_DOCKERFILES, f"{where}: no command and a foreign image"
                argv = [*image_info["entrypoint"], *c.get("args", image_info["cmd"])]
            yield Shipped(where, [_expand_k8s(a, env, where) for a in argv], env, files)
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                command = ((c.get(probe) or {}).get("exec") or {}).get("command")
                if command:
                    argv = [_expand_k8s(a, env, where) for a in command]
                    yield Shipped(f"{where} {probe}", argv, env, files)


def _expand_k8s(arg: str, env: dict[str, str], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"{where}: $({name}) is not in the container's environment"
        return env[name]

    return K8S_VAR.sub(value, arg.replace("$$", "\x00")).replace("\x00", "$")


# -- from a command line to the programs it runs --


def invocations(shipped: Shipped) -> list[Invocation]:
    argv = shipped.argv
    assert argv, f"{shipped.where}: empty command"
    if argv[0] in SHELLS:
        if argv[1] == "-c":
            script = argv[2]
        else:
            assert argv[1] in shipped.files, f"{shipped.where}: {argv[1]} is not mounted"
            script = shipped.files[argv[1]]
        return _shell(script, dict(shipped.env), shipped.where)
    return [Invocation(shipped.where, argv[0], argv[1:], shipped.env)]


def _shell(script: str, env: dict[str, str], where: str) -> list[Invocation]:
    syntax = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert syntax.returncode == 0, f"{where}: sh -n: {syntax.stderr}"
    found: list[Invocation] = []
    inner_scripts: list[str] = []

    def mark(match: re.Match[str]) -> str:
        inner_scripts.append(match.group(1))
        return f"__substitution_{len(inner_scripts) - 1}__"

    script = SUBSTITUTION.sub(mark, script)
    script = re.sub(r"\\\n", " ", script)
    # Newlines end commands (and comments): an operator here, not whitespace.
    lexer = shlex.shlex(script, posix=True, punctuation_chars="();&|\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    command: list[str] = []
    for token in [*lexer, ";"]:
        operator = token in SEPARATORS or (token and set(token) <= set("();&|\n"))
        if operator or (not command and token in KEYWORDS):
            if command:
                # A command substitution runs first, with the variables set so far.
                for word in command:
                    for index in re.findall(r"__substitution_(\d+)__", word):
                        found += _shell(inner_scripts[int(index)], env, f"{where} $(...)")
                command = [re.sub(r"__substitution_\d+__", "/substituted", w) for w in command]
                found += _simple(command, env, where)
            command = []
        else:
            command.append(token)
    return found


def _simple(words: list[str], env: dict[str, str], where: str) -> list[Invocation]:
    def expand(word: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            assert name in env, f"{where}: ${name} is set by neither the environment nor the script"
            return env[name]

        return SHELL_VAR.sub(value, word)

    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, raw = words.pop(0).partition("=")
        env[name] = expand(raw)
    if not words:
        return []
    words = [expand(w) for w in words]
    return [Invocation(where, words[0], words[1:], dict(env))]


def all_invocations() -> list[Invocation]:
    shipped = [*dockerfile_commands(), *compose_commands()]
    for kustomization in KUSTOMIZATIONS:
        shipped += k8s_commands(kustomization)
    return [inv for s in shipped for inv in invocations(s)]


# -- checking each with the real parser --

_SYNC_SETTINGS: dict[str, Any] = {}


def _module(inv: Invocation) -> tuple[str, list[str]]:
    """Which of our programs this is, and its arguments (python -m X ... -> X)."""
    scripts = {
        "routeiq-trainer": "trainer",
        "routeiq-decision-service": "decision_service",
        "routeiq-sync-agent": "decision_service.sync",
        "litellm": "litellm",
    }
    program = Path(inv.program).name
    if program in scripts:
        return scripts[program], inv.args
    if re.fullmatch(r"python3?(\.\d+)?", program):
        if inv.args[:1] == ["-m"]:
            return inv.args[1], inv.args[2:]
        if inv.args[:1] == ["-c"]:
            return "-c", inv.args[1:]
    return program, inv.args


def _clean_environ(env: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTEIQ_", "OTEL_"))}
    return {**keep, **env}


def check_trainer(inv: Invocation, args: list[str]) -> None:
    from decision_service.bundle_registry import open_store
    from trainer.cli import _parser

    try:
        parsed = _parser().parse_args(args)
    except SystemExit as exc:
        if exc.code == 0 and "--help" in args:
            return  # the help text, exit 0: what `docker run` of the bare image prints
        raise AssertionError(
            f"{inv.where}: routeiq-trainer {shlex.join(args)}: exit {exc}"
        ) from exc
    registry = getattr(parsed, "registry", None)
    if registry is not None:
        with mock.patch.dict(os.environ, _clean_environ(inv.env), clear=True):
            open_store(registry, endpoint_url=parsed.s3_endpoint)


def check_service(inv: Invocation, args: list[str]) -> None:
    import decision_service.__main__ as service_main

    seen = []

    def serve(settings: Any) -> None:  # everything before the server starts is real
        seen.append(settings)

    with (
        mock.patch.dict(os.environ, _clean_environ(inv.env), clear=True),
        mock.patch.object(service_main, "serve", serve),
    ):
        try:
            code = service_main.main(args)
        except SystemExit as exc:
            raise AssertionError(
                f"{inv.where}: decision service {shlex.join(args)}: exit {exc}"
            ) from exc
    assert code == 0 and len(seen) == 1, inv.where


def check_sync_agent(inv: Invocation, args: list[str]) -> None:
    import decision_service.sync.__main__ as sync_main

    seen = []

    class Agent:  # everything up to building the real agent runs; the agent would sync
        def __init__(self, settings: Any) -> None:
            seen.append(settings)
            self.metrics = mock.Mock()

        def attempt(self) -> str:
            return "version"

        def run(self) -> None:
            return None

        def stop(self) -> None:
            return None

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with (
            mock.patch.dict(os.environ, _clean_environ(inv.env), clear=True),
            mock.patch.object(sync_main, "SyncAgent", Agent),
            mock.patch.object(sync_main, "start_http_server"),
        ):
            try:
                code = sync_main.main(args)
            except SystemExit as exc:
                raise AssertionError(
                    f"{inv.where}: routeiq-sync-agent {shlex.join(args)}: {exc}"
                ) from exc
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert code == 0 and len(seen) == 1, inv.where
    _SYNC_SETTINGS[inv.where] = (seen[0], "--once" in args)


def check_probe(inv: Invocation, args: list[str]) -> None:
    assert len(args) <= 1, f"{inv.where}: the probe takes one HOST:PORT"
    if args:
        host, _, port = args[0].rpartition(":")
        assert host and port.isdigit(), f"{inv.where}: {args[0]} is not HOST:PORT"


def check_python_code(inv: Invocation, args: list[str]) -> None:
    compile(args[0], f"<{inv.where}>", "exec")


def check_litellm(batch: list[Invocation]) -> None:
    if not batch:
        return
    if not PROXY_PYTHON.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PROXY_PYTHON} is missing; CI must have it (make proxy-venv)")
        pytest.skip(f"{PROXY_PYTHON} is missing: run `make proxy-venv`")
    code = (
        "import json, sys\n"
        "from litellm.proxy.proxy_cli import run_server\n"
        "failed = []\n"
        "for where, args in json.load(sys.stdin):\n"
        "    try:\n"
        "        run_server.make_context('litellm', list(args))\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{where}: litellm {args}: {exc}')\n"
        "print(json.dumps(failed))\n"
    )
    result = subprocess.run(
        [str(PROXY_PYTHON), "-c", code],
        input=json.dumps([[inv.where, inv.args] for inv in batch]),
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


CHECKS = {
    "trainer": check_trainer,
    "decision_service": check_service,
    "decision_service.sync": check_sync_agent,
    "decision_service.probe": check_probe,
    "-c": check_python_code,
}


def check(invs: list[Invocation]) -> set[str]:
    """Check every invocation; returns the third-party programs met."""
    third_party: set[str] = set()
    litellm: list[Invocation] = []
    for inv in invs:
        module, args = _module(inv)
        if module == "litellm":
            litellm.append(Invocation(inv.where, "litellm", args, inv.env))
        elif module in CHECKS:
            CHECKS[module](inv, args)
        else:
            assert module in THIRD_PARTY, f"{inv.where}: unknown program {inv.program} {inv.args}"
            third_party.add(module)
    check_litellm(litellm)
    return third_party


# -- the tests --


@pytest.fixture(scope="module")
def shipped() -> list[Invocation]:
    return all_invocations()


def test_every_shipped_command_parses_with_the_real_cli(shipped: list[Invocation]) -> None:
    third_party = check(shipped)
    assert third_party == set(THIRD_PARTY), "THIRD_PARTY lists programs deploy/ no longer runs"
    # Every source contributed, so the collection itself cannot silently come back empty.
    wheres = {inv.where.split()[0] for inv in shipped}
    assert {"compose", "k8s"} <= wheres and any(w.endswith(".Dockerfile") for w in wheres)


def _programs(shipped: list[Invocation], where: str) -> list[tuple[str, list[str]]]:
    return [_module(inv) for inv in shipped if inv.where.startswith(where)]


def test_the_pods_sync_with_the_agent_from_the_serving_image(shipped: list[Invocation]) -> None:
    check([inv for inv in shipped if _module(inv)[0] == "decision_service.sync"])
    for name in OVERLAYS:
        prefix = f"k8s overlays/{name} Deployment/decision-service"
        init, init_once = _SYNC_SETTINGS[f"{prefix} model-sync-init"]
        sidecar, sidecar_once = _SYNC_SETTINGS[f"{prefix} model-sync"]
        assert init_once and not sidecar_once
        for settings in (init, sidecar):
            assert str(settings.models_dir) == "/models"
            assert settings.registry.startswith("s3://") and settings.channel == "stable"
            assert settings.redis_url and settings.redis_url.startswith("redis://")
    dev, _ = _SYNC_SETTINGS["k8s overlays/dev Deployment/decision-service model-sync"]
    assert dev.s3_endpoint == "http://minio.routeiq-dev.svc:9000"
    for service in ("model-sync-init", "model-sync"):
        settings, once = _SYNC_SETTINGS[f"compose {service}"]
        assert once is (service == "model-sync-init")
        assert settings.s3_endpoint == "http://s3:5000" and settings.redis_url
    # No torch image syncs anything, and nothing calls the old `trainer pull` loop.
    for module, args in _programs(shipped, "k8s overlays/prod Deployment/decision-service"):
        assert module != "trainer", args


def test_the_registry_seed_and_training_publish_with_a_bundle_and_a_channel(
    shipped: list[Invocation],
) -> None:
    seed = [
        args for module, args in _programs(shipped, "compose registry-seed") if module == "trainer"
    ]
    assert [a[0] for a in seed] == ["pull", "build", "publish"]
    publish = seed[-1]
    assert publish[publish.index("--bundle") + 1] == "/tmp/artifacts/knn"
    assert publish[publish.index("--promote") + 1] == "stable"
    cron = _programs(shipped, "k8s overlays/prod CronJob/routeiq-trainer")
    assert [a[0] for m, a in cron if m == "trainer"] == ["pull", "train", "publish"]
    (publish,) = [a for m, a in cron if m == "trainer" and a[0] == "publish"]
    assert publish[publish.index("--promote") + 1] == "canary"


def test_a_wrong_flag_fails_the_check() -> None:
    # The compose seed line: `publish` has no --channel and needs --bundle.
    wrong = Shipped(
        "the old compose seed",
        ["/bin/sh", "-c", 'python -m trainer publish --registry "$R" --channel stable /tmp/a/knn'],
        {"R": "s3://bucket/registry"},
    )
    with pytest.raises(AssertionError, match="exit 2"):
        check(invocations(wrong))
    with pytest.raises(AssertionError, match=r"\$UNSET is set by neither"):
        invocations(Shipped("unset", ["sh", "-c", "routeiq-trainer pull --dest $UNSET"], {}))
    sync = Shipped(
        "sync", ["routeiq-sync-agent", "--once", "--dest", "/models"], {"ROUTEIQ_REGISTRY": "/r"}
    )
    with pytest.raises(AssertionError, match="routeiq-sync-agent"):
        check(invocations(sync))
    with pytest.raises(AssertionError, match=r"\$\(NOPE\)"):
        _expand_k8s("$(NOPE)", {}, "k8s")
