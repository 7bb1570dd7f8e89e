"""Real servers for integration tests: started as processes on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import onnx
import onnx.numpy_helper
from grpc_health.v1 import health_pb2, health_pb2_grpc

from decision_service.local import free_loopback_port
from decision_service.manifest import BUNDLE_MANIFEST, sha256_file
from decision_service.probe import wait_serving

REPO = Path(__file__).resolve().parents[2]


free_port = free_loopback_port


class DecisionServiceProcess:
    """``python -m decision_service`` on a loopback port; stop and start again on the same port."""

    def __init__(self, bundle_dir: Path, encoder_dir: Path, *extra_args: str, **env: str) -> None:
        self.bundle_dir = bundle_dir
        self.encoder_dir = encoder_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        # Set for a TLS server: readiness is then probed over a secure channel.
        self.channel_credentials: grpc.ChannelCredentials | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"routeiq-service-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> DecisionServiceProcess:
        cmd = [
            sys.executable,
            "-m",
            "decision_service",
            "--bundle",
            str(self.bundle_dir),
            "--encoder",
            str(self.encoder_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        try:
            if self.channel_credentials is None:
                wait_serving(self.address, timeout_s, alive=lambda: self.process.poll() is None)
            else:
                self._wait_serving_secure(timeout_s)
        except Exception:
            self.stop()
            raise RuntimeError(f"decision service failed to start:\n{self.log()}") from None
        return self

    def _wait_serving_secure(self, timeout_s: float) -> None:
        assert self.channel_credentials is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError("the server exited before serving")
            with grpc.secure_channel(self.address, self.channel_credentials) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.address} did not become SERVING over TLS")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> DecisionServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
