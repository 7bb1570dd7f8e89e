"""Packaging: floors match the generated stubs, every import is declared in the extra that ships
it, the wheel carries py.typed, the stubs and the license, the console scripts answer, and the
trainer's --help and registry commands load neither torch nor scikit-learn.

The floors themselves are installed and smoke-tested by ``make check-floors``
(tests/packaging/check_floors.py), which takes minutes and so is not part of this module.
"""

from __future__ import annotations

import ast
import email
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.packaging.check_floors import PROJECT, FloorError, pins_for, source_files

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("routeiq", "decision_service", "gateway_client", "trainer")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
HEAVY = ("torch", "sklearn", "sentence_transformers", "transformers", "scipy", "matplotlib")

# The extras a package may import from (beyond the base install), and the packages whose
# imports justify an extra's requirements.
IMPORTS_FROM = {
    "routeiq": (),
    "decision_service": ("service",),
    "gateway_client": ("gateway",),
    "trainer": ("service", "trainer", "tracking"),
}
USED_BY = {
    "base": ("routeiq",),
    "service": ("decision_service",),
    "gateway": ("gateway_client",),
    "trainer": ("trainer",),
    "tracking": ("trainer",),
}
# Distributions that come with a declared one and are imported for its types (exceptions).
COMES_WITH = {"botocore": "boto3"}


def requirements(extra: str | None) -> list[Requirement]:
    project = PYPROJECT["project"]
    raw = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(r) for r in raw]


def declared(extra: str | None) -> dict[str, Requirement]:
    return {
        str(canonicalize_name(r.name)): r
        for r in requirements(extra)
        if canonicalize_name(r.name) != PROJECT
    }


def floor(name: str, extra: str | None = None) -> Version:
    (spec,) = [s for s in declared(extra)[name].specifier if s.operator == ">="]
    return Version(spec.version)


# -- floors ----------------------------------------------------------------------------------


def stub_versions() -> tuple[set[str], set[str]]:
    """The grpcio and protobuf versions the committed stubs demand."""
    grpc_versions, protobuf_versions = set(), set()
    stubs = REPO / "routeiq" / "decision" / "v1"
    for path in stubs.glob("*_pb2_grpc.py"):
        grpc_versions.update(re.findall(r"GRPC_GENERATED_VERSION = '([\d.]+)'", path.read_text()))
    for path in stubs.glob("*_pb2.py"):
        match = re.search(
            r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*"
            r"(\d+),\s*(\d+),\s*(\d+),",
            path.read_text(),
        )
        assert match, f"{path.name} has no protobuf runtime version check"
        protobuf_versions.add(".".join(match.groups()))
    assert grpc_versions and protobuf_versions
    return grpc_versions, protobuf_versions


def test_contract_floors_are_the_versions_the_stubs_were_generated_with():
    grpc_versions, protobuf_versions = stub_versions()
    assert len(grpc_versions) == 1 and len(protobuf_versions) == 1, (
        grpc_versions,
        protobuf_versions,
    )
    (grpc_version,), (protobuf_version,) = grpc_versions, protobuf_versions
    assert floor("grpcio") == Version(grpc_version)
    assert floor("protobuf") == Version(protobuf_version)
    for name, extra in (
        ("grpcio-health-checking", "service"),
        ("grpcio-reflection", "service"),
        ("grpcio-tools", "dev"),
    ):
        assert floor(name, extra) == Version(grpc_version), name


def test_every_extra_pins_to_floors_that_agree():
    for extra in PYPROJECT["project"]["optional-dependencies"]:
        try:
            pins = pins_for(PYPROJECT, [extra])
        except FloorError as exc:
            pytest.fail(f"extra {extra!r}: {exc}")
        assert pins, extra


def test_litellm_range_holds_the_versions_the_tests_run():
    litellm = declared("gateway")["litellm"]
    makefile = (REPO / "Makefile").read_text()
    (proxy,) = re.findall(r"^PROXY_LITELLM \?= (\S+)$", makefile, flags=re.MULTILINE)
    assert litellm.specifier.contains(proxy), (str(litellm), proxy)
    gateway_image = (REPO / "deploy/docker/litellm-gateway.Dockerfile").read_text()
    assert re.findall(r"'litellm\[proxy\]==([^']+)'", gateway_image) == [proxy]
    assert litellm.specifier.contains(metadata.version("litellm")), str(litellm)
    assert any(s.operator == "<" for s in litellm.specifier), "no ceiling on untested LiteLLM"


def test_constraints_pin_every_installed_requirement_inside_its_range():
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[str(canonicalize_name(name))] = version.split("+")[0]
    for extra in (None, *PYPROJECT["project"]["optional-dependencies"]):
        for name, requirement in declared(extra).items():
            assert name in pins, f"constraints.txt does not pin {name}"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"constraints.txt pins {name}=={pins[name]} outside {requirement}"
            )


# -- each dependency in the extra that uses it -----------------------------------------------


def imports_of(package: str) -> Iterator[tuple[str, Path]]:
    """Every absolute module name ``package`` imports (lazy imports included)."""
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, path
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # The name may be a submodule ("from opentelemetry import trace", a namespace
                # package): distribution_of takes the longest prefix an installed package has.
                for alias in node.names:
                    yield f"{node.module}.{alias.name}", path


@cache
def module_owners() -> dict[str, str]:
    """Installed module path ('opentelemetry/sdk/trace') -> the distribution that ships it."""
    owners: dict[str, str] = {}
    for dist in metadata.distributions():
        name = str(canonicalize_name(dist.metadata["Name"]))
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            if file.suffix == ".py":
                stem = "/".join(parts)[: -len(".py")]
                owners.setdefault(stem.removesuffix("/__init__"), name)
            elif file.suffix in (".so", ".pyd"):
                owners.setdefault("/".join((*parts[:-1], file.name.split(".")[0])), name)
    return owners


def distribution_of(module: str) -> str | None:
    """The distribution that provides ``module`` (None: standard library or unknown)."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return None
    parts = module.split(".")
    owners = module_owners()
    while parts:
        owner = owners.get("/".join(parts))
        if owner is not None:
            return owner
        parts.pop()
    return None


def third_party_imports(package: str) -> dict[str, set[str]]:
    """distribution -> the files of ``package`` that import it."""
    found: dict[str, set[str]] = {}
    for module, path in imports_of(package):
        if module.split(".")[0] in PACKAGES:
            continue
        dist = distribution_of(module)
        if dist is None:
            top = module.split(".")[0]
            assert top in sys.stdlib_module_names or top == "__future__", (
                f"{path.relative_to(REPO)} imports {module}, which no installed package provides"
            )
            continue
        found.setdefault(COMES_WITH.get(dist, dist), set()).add(str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_its_extras_declare(package):
    allowed = set(declared(None))
    for extra in IMPORTS_FROM[package]:
        allowed |= set(declared(extra))
    undeclared = {
        dist: sorted(files)
        for dist, files in third_party_imports(package).items()
        if dist not in allowed
    }
    assert not undeclared, f"{package} imports undeclared distributions: {undeclared}"


def test_cross_package_imports_stay_inside_the_install():
    """The gateway image has neither the service's nor the trainer's dependencies; the service
    image has no trainer; the contract imports nothing of ours."""
    forbidden = {
        "routeiq": {"decision_service", "gateway_client", "trainer"},
        "decision_service": {"gateway_client", "trainer"},
        "gateway_client": {"decision_service", "trainer"},
    }
    for package, others in forbidden.items():
        crossing = sorted(
            f"{path.relative_to(REPO)}: {module}"
            for module, path in imports_of(package)
            if module.split(".")[0] in others
        )
        assert not crossing, crossing


@pytest.mark.parametrize("extra", sorted(USED_BY))
def test_every_declared_dependency_is_imported_by_a_user_of_its_extra(extra):
    used: set[str] = set()
    for package in USED_BY[extra]:
        used |= set(third_party_imports(package))
    unused = sorted(set(declared(None if extra == "base" else extra)) - used)
    assert not unused, f"[{extra}] declares {unused}, which {USED_BY[extra]} never import"


# -- what the wheel ships ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel built from a copy of the tracked and unignored files."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"
    for name in source_files(REPO):
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob(f"{PROJECT}-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def dist_info(archive: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in archive.namelist() if re.fullmatch(rf"[^/]+\.dist-info/{name}", n)]
    return archive.read(path).decode()


def test_wheel_ships_py_typed_and_the_contract_stubs(wheel):
    names = set(wheel.namelist())
    for package in PACKAGES:
        assert f"{package}/py.typed" in names, package
    stubs = {n for n in names if n.startswith("routeiq/decision/v1/")}
    for proto in ("decision", "admin"):
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert f"routeiq/decision/v1/{proto}{suffix}" in stubs
    assert not any(n.startswith(("tests/", "tools/", "proto/")) for n in names)


def test_wheel_declares_the_license_and_ships_its_text(wheel):
    meta = email.message_from_string(dist_info(wheel, "METADATA"))
    assert meta["License-Expression"] == PYPROJECT["project"]["license"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    shipped = dist_info(wheel, "licenses/LICENSE")
    assert shipped == (REPO / "LICENSE").read_text()
    assert "Apache License" in shipped and "Version 2.0, January 2004" in shipped
    assert "END OF TERMS AND CONDITIONS" in shipped


SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]


def test_wheel_declares_the_console_scripts(wheel):
    assert SCRIPTS["routeiq-decision-service"] == "decision_service.__main__:main"
    assert SCRIPTS["routeiq-trainer"] == "trainer.cli:main"
    entry_points = dist_info(wheel, "entry_points.txt")
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_scripts_are_installed_and_answer_help(script, tmp_path):
    path = Path(sys.executable).parent / script
    assert path.is_file(), f"{script} is not in {path.parent}: reinstall (make install)"
    done = subprocess.run(
        [str(path), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script} ") or "usage:" in done.stdout


# -- the trainer CLI's light commands --------------------------------------------------------

PROBE = """
import json, runpy, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["trainer", *args]
code = 0
try:
    runpy.run_module("trainer", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
except Exception as exc:  # the imports are what is checked here, not the outcome
    code = f"{type(exc).__name__}: {exc}"
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(%r)))
with open(out, "w") as f:
    json.dump({"code": code, "heavy": heavy}, f)
"""


def run_trainer(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "probe.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE % json.dumps(HEAVY), str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.is_file(), done.stderr
    return {**json.loads(out.read_text()), "stdout": done.stdout, "stderr": done.stderr}


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["train", "--help"],
        ["versions", "--registry", "{registry}"],
        ["pull", "--registry", "{registry}", "--channel", "stable", "--dest", "{dest}"],
        ["publish", "--registry", "{registry}", "--bundle", "{missing}"],
        ["promote", "--registry", "{registry}", "--version", "v0", "--channel", "stable"],
        ["rollback", "--registry", "{registry}", "--channel", "stable"],
    ],
    ids=lambda args: args[0] if args[0] != "--help" else "help",
)
def test_trainer_help_and_registry_commands_import_no_torch_or_sklearn(tmp_path, args):
    registry = tmp_path / "registry"
    registry.mkdir()
    paths = {"registry": registry, "dest": tmp_path / "dest", "missing": tmp_path / "no-bundle"}
    result = run_trainer(tmp_path, *(a.format(**paths) for a in args))
    assert result["heavy"] == [], (result["heavy"], result["stderr"][-2000:])
    # --help exits 0; the registry commands reach the registry (an empty one: a refusal, not
    # a crash), which proves their imports ran.
    assert result["code"] in (0, 2, 3) or args[0] == "publish", result
    if args[0] == "versions":
        assert result["code"] == 0 and '"versions": []' in result["stdout"], result


def test_router_names_are_offered_without_importing_any_family():
    import trainer.routers as routers

    assert routers.ROUTER_TYPES == ("knn", "svm", "mlp", "mf", "blend")
    assert set(routers.__all__) == {*routers._LAZY, "ROUTER_TYPES", "make_router"}
    with pytest.raises(AttributeError):
        _ = routers.NoSuchRouter
