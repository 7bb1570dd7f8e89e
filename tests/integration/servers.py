"""Real servers for integration tests: started as processes on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import grpc
import onnx
import onnx.numpy_helper

from decision_service.manifest import BUNDLE_MANIFEST, sha256_file
from tools.local_service import LocalService, free_loopback_port

REPO = Path(__file__).resolve().parents[2]


free_port = free_loopback_port


class DecisionServiceProcess(LocalService):
    """``LocalService`` for tests: an explicit encoder, output in a log file the test can read,
    readiness probed over TLS when ``channel_credentials`` is set, and restartable on its port.
    """

    def __init__(self, bundle_dir: Path, encoder_dir: Path, *extra_args: str, **env: str) -> None:
        super().__init__(bundle_dir, "--encoder", str(encoder_dir), *extra_args, env=env, cwd=REPO)
        self.channel_credentials: grpc.ChannelCredentials | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"routeiq-service-{self.port}.log"

    def start(
        self, timeout_s: float = 60.0, credentials: grpc.ChannelCredentials | None = None
    ) -> DecisionServiceProcess:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.output = log
            try:
                super().start(timeout_s, credentials or self.channel_credentials)
            except Exception:
                raise RuntimeError(f"decision service failed to start:\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> DecisionServiceProcess:
        return self.start()


def switch_pointer(link: Path, target: Path) -> None:
    """Point the symlink ``link`` at ``target`` atomically (how bundles are delivered)."""
    tmp = link.parent / f".{link.name}.switch-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp, target_is_directory=True)
    os.replace(tmp, link)


def metrics_text(port: int, timeout_s: float = 10.0) -> str:
    """The Prometheus exposition text of a service's /metrics endpoint."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as reply:
        return str(reply.read().decode())


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in exposition ``text`` (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# Bad and good bundle variants (copies; the originals stay untouched).


def copy_bundle(source: Path, target: Path) -> Path:
    return Path(shutil.copytree(source.resolve(), target, symlinks=False))


def tampered(source: Path, target: Path) -> Path:
    bundle = copy_bundle(source, target)
    router = bundle / "router.onnx"
    data = bytearray(router.read_bytes())
    data[-1] ^= 0xFF
    router.write_bytes(bytes(data))
    return bundle


def with_pickle(source: Path, target: Path) -> Path:
    bundle = copy_bundle(source, target)
    (bundle / "model.pkl").write_bytes(b"\x80\x04\x95")
    return bundle


def with_external_data(source: Path, target: Path) -> Path:
    """Router tensors moved to a file outside the bundle; the manifest hash is made to match."""
    bundle = copy_bundle(source, target)
    router = bundle / "router.onnx"
    model = onnx.load(str(router))
    outside = target.parent / f"{target.name}-outside.bin"
    # onnx's own writer refuses ".." locations, so the tensors are moved out by hand, as a
    # malicious publisher would.
    with outside.open("wb") as fh:
        for tensor in model.graph.initializer:
            raw = onnx.numpy_helper.to_array(tensor).tobytes()
            offset = fh.tell()
            fh.write(raw)
            tensor.ClearField("raw_data")
            for name in ("float_data", "int64_data", "int32_data", "double_data"):
                tensor.ClearField(name)  # type: ignore[arg-type]
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            for key, value in (
                ("location", f"../{outside.name}"),
                ("offset", str(offset)),
                ("length", str(len(raw))),
            ):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
    router.write_bytes(model.SerializeToString())
    manifest_path = bundle / BUNDLE_MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["router.onnx"] = sha256_file(router)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return bundle
