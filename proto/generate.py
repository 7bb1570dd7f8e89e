"""Generate the Python contract package from every .proto under proto/ (run by `make proto`).

The proto path mirrors the Python package: ``proto/routeiq/decision/v1/*.proto`` (proto
package ``routeiq.decision.v1``) becomes the Python package ``routeiq.decision.v1`` at the
top of the repository, so protoc's own absolute imports
(``from routeiq.decision.v1 import decision_pb2``) resolve as written and nothing in its
output is rewritten. ``routeiq`` is the wire contract only: the service, the gateway client
and the trainer all import their wire types from it and never from one another.

``--check`` regenerates into a temporary folder and fails when a committed stub differs
(stale) or when the package holds a generated-looking file protoc no longer writes (extra),
which is how CI proves nobody edited or left behind a stub by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_PACKAGE = Path("routeiq/decision/v1")
DEFAULT_OUT = ROOT  # the package path below it is the proto path
GENERATED = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def _generated_in(folder: Path) -> set[str]:
    return {p.name for pattern in GENERATED for p in folder.glob(pattern)}


def generate(out_root: Path) -> list[Path]:
    """Run protoc for every .proto in the package; the stubs land in ``out_root/<package>``."""
    protos = sorted((PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PROTO_PACKAGE}")
    with tempfile.TemporaryDirectory() as raw:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            *[str(p) for p in protos],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out_dir = out_root / PROTO_PACKAGE
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted((Path(raw) / PROTO_PACKAGE).iterdir()):
            dst = out_dir / src.name
            shutil.copyfile(src, dst)
            written.append(dst)
    return written


def check(out_root: Path) -> int:
    committed = out_root / PROTO_PACKAGE
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = sorted(
            p.name
            for p in fresh
            if not (committed / p.name).exists()
            or not filecmp.cmp(p, committed / p.name, shallow=False)
        )
        extra = sorted(_generated_in(committed) - {p.name for p in fresh})
    if stale or extra:
        if stale:
            print(f"stale generated stubs in {committed}: {', '.join(stale)}")
        if extra:
            print(
                f"extra generated files in {committed} (no .proto writes them): {', '.join(extra)}"
            )
        print("run `make proto`")
        return 1
    print(f"generated stubs in {committed} are up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="root the package lands in")
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale or extra")
    args = parser.parse_args()
    if args.check:
        return check(args.out)
    out_dir = args.out / PROTO_PACKAGE
    for name in _generated_in(out_dir):
        (out_dir / name).unlink()
    for path in generate(args.out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
