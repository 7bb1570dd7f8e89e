"""Install the lowest versions pyproject.toml allows into scratch venvs and smoke-test them.

    python -m tests.packaging.check_floors [--set service] [--set gateway] [--keep DIR]

``make check-floors`` runs it (and ``.ci/run`` runs that). For each set it:

1. builds the wheel of this checkout once (from a copy of the tracked and unignored files,
   so the work tree gets no build/ or egg-info folders);
2. pins every requirement of the base install plus the set's extra to its floor, the lowest
   version its specifier allows (``>=X``, ``~=X`` or ``==X``; a requirement without a floor
   is an error), and installs those pins into a fresh venv, letting pip resolve the rest;
3. installs the wheel with ``--no-deps`` and checks that every pin is what got installed;
4. runs ``floors_smoke.py SET`` there with ``python -I`` from a temporary folder (imports
   resolve to the venv only), and the console scripts' ``--help``.

Sets: ``service`` (base + service) and ``gateway`` (base + gateway: LiteLLM's floor, whose
own requirements raise pydantic's, hence a venv of its own). The trainer extra is not
checked here: it pins torch==2.13.0 and would add gigabytes and minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).resolve().with_name("floors_smoke.py")
PROJECT = "routeiq"
SETS: dict[str, tuple[str, ...]] = {"service": ("service",), "gateway": ("gateway",)}
# The packages whose console scripts each set runs with --help (the trainer's --help needs
# no trainer extra: it imports neither torch nor scikit-learn).
SCRIPT_PACKAGES: dict[str, tuple[str, ...]] = {
    "service": ("decision_service", "trainer"),
    "gateway": ("trainer",),
}
PIP_TIMEOUT_S = 900
SMOKE_TIMEOUT_S = 300


class FloorError(Exception):
    pass


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    requirement: str  # as written in pyproject.toml

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def floor_of(requirement: Requirement) -> Version:
    """The lowest version ``requirement``'s specifier allows."""
    lows = [
        Version(spec.version)
        for spec in requirement.specifier
        if spec.operator in (">=", "~=", "==") and "*" not in spec.version
    ]
    if not lows:
        raise FloorError(f"{requirement} has no floor (>=, ~= or ==)")
    return max(lows)


def pins_for(pyproject: dict, extras: Iterable[str]) -> list[Pin]:
    """Every requirement of the base install and ``extras`` (self-references expanded),
    pinned to its floor; one pin per distribution, the highest floor when several name it."""
    project = pyproject["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    pending = list(extras)
    seen_extras: set[str] = set()
    requirements = [Requirement(r) for r in project.get("dependencies", [])]
    while pending:
        extra = pending.pop()
        if extra in seen_extras:
            continue
        if extra not in optional:
            raise FloorError(f"pyproject.toml has no extra {extra!r}")
        seen_extras.add(extra)
        for raw in optional[extra]:
            requirement = Requirement(raw)
            if canonicalize_name(requirement.name) == PROJECT:
                pending.extend(requirement.extras)
            else:
                requirements.append(requirement)
    requirements = [r for r in requirements if r.marker is None or r.marker.evaluate()]
    pins: dict[str, Pin] = {}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        floor = floor_of(requirement)
        if not requirement.specifier.contains(floor, prereleases=True):
            raise FloorError(f"{requirement}: its own floor {floor} is excluded")
        current = pins.get(name)
        if current is None or Version(current.version) < floor:
            extras_part = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            pins[name] = Pin(name + extras_part, str(floor), str(requirement))
    for requirement in requirements:  # every requirement on a name must accept its pin
        pin = pins[canonicalize_name(requirement.name)]
        if not requirement.specifier.contains(pin.version, prereleases=True):
            raise FloorError(f"{requirement} excludes the floor {pin} of another extra")
    return sorted(pins.values(), key=lambda p: p.name)


def scripts_for(pyproject: dict, name: str) -> list[str]:
    """The console scripts of the packages ``SCRIPT_PACKAGES[name]``."""
    scripts: dict[str, str] = pyproject["project"].get("scripts", {})
    return sorted(
        script
        for script, target in scripts.items()
        if target.split(".")[0].split(":")[0] in SCRIPT_PACKAGES[name]
    )


def run(cmd: Sequence[str | Path], *, timeout: float, cwd: Path | None = None) -> str:
    """Run ``cmd``; its combined output, or FloorError with the output's tail."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        raise FloorError(f"timed out after {timeout:.0f}s: {' '.join(map(str, cmd))}") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        lines = [line for line in output.splitlines() if not line.startswith("WARNING: Location")]
        tail = "\n".join(lines[-40:])
        raise FloorError(
            f"exit {done.returncode} after {time.monotonic() - started:.0f}s: "
            f"{' '.join(map(str, cmd))}\n{tail}"
        )
    return output


def source_files(repo: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (repo / f).is_file()]


def build_wheel(repo: Path, out: Path) -> Path:
    """The wheel of ``repo``'s tracked and unignored files, built in a copy of them."""
    src = out / "src"
    for name in source_files(repo):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, src],
        timeout=PIP_TIMEOUT_S,
    )
    (wheel,) = out.glob(f"{PROJECT}-*.whl")
    return wheel


def installed_versions(python: Path, names: Iterable[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, sys\nfor n in sys.argv[1:]:\n    print(n, m.version(n))\n"
    )
    output = run([python, "-I", "-c", code, *names], timeout=60)
    return dict(line.split(" ", 1) for line in output.strip().splitlines())


def check_set(name: str, pins: list[Pin], scripts: list[str], wheel: Path, root: Path) -> str:
    venv = root / f"venv-{name}"
    started = time.monotonic()
    run([sys.executable, "-m", "venv", "--without-pip", venv], timeout=120)
    python = venv / "bin" / "python"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    run([*pip, *map(str, pins)], timeout=PIP_TIMEOUT_S)
    run([*pip, "--no-deps", wheel], timeout=PIP_TIMEOUT_S)
    installed_s = time.monotonic() - started
    bare = [p.name.split("[")[0] for p in pins]
    got = installed_versions(python, bare)
    wrong = [
        f"{p} (got {got.get(b)})"
        for p, b in zip(pins, bare, strict=True)
        if Version(got[b]) != Version(p.version)
    ]
    if wrong:
        raise FloorError(f"{name}: pip installed other versions than the floors: {wrong}")
    work = root / f"cwd-{name}"
    work.mkdir()
    smoke = run(
        [python, "-I", SMOKE, name],
        timeout=SMOKE_TIMEOUT_S,
        cwd=work,
    )
    for script in scripts:
        out = run([venv / "bin" / script, "--help"], timeout=120, cwd=work)
        if "usage:" not in out:
            raise FloorError(f"{script} --help printed no usage:\n{out}")
    lines = [
        f"[{name}] floors: {', '.join(map(str, pins))}",
        *(f"[{name}] {line}" for line in smoke.strip().splitlines()),
        f"[{name}] console scripts answer --help: {', '.join(scripts)}",
        f"[{name}] ok in {time.monotonic() - started:.0f}s (install {installed_s:.0f}s)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="sets", action="append", choices=sorted(SETS))
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them")
    parser.add_argument("--list", action="store_true", help="print the pins and exit")
    args = parser.parse_args(argv)
    names = args.sets or list(SETS)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    try:
        plan = {name: pins_for(pyproject, SETS[name]) for name in names}
    except FloorError as exc:
        print(f"floors: {exc}", file=sys.stderr)
        return 1
    if args.list:
        for name, pins in plan.items():
            print(f"{name}: {' '.join(map(str, pins))}")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="routeiq-floors-") as raw:
        root = args.keep or Path(raw)
        if args.keep:
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
        failures = []
        try:
            wheel = build_wheel(REPO, root / "dist")
            with ThreadPoolExecutor(max_workers=len(plan)) as pool:
                jobs = {
                    n: pool.submit(check_set, n, pins, scripts_for(pyproject, n), wheel, root)
                    for n, pins in plan.items()
                }
                for name, job in jobs.items():
                    try:
                        print(job.result(), flush=True)
                    except FloorError as exc:
                        failures.append(f"[{name}] FAILED: {exc}")
        except FloorError as exc:
            failures.append(f"wheel: {exc}")
    for failure in failures:
        print(failure, file=sys.stderr)
    verdict = "failed" if failures else "passed"
    print(f"floors check {verdict}: {', '.join(names)} in {time.monotonic() - started:.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
