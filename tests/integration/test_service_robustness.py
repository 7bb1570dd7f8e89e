"""Bad input thrown at a live service, and TLS / mutual TLS.

The property-based test sends random requests (valid, malformed, huge, non-finite,
duplicated, unknown strategies) and checks the service never crashes, never answers
outside the candidate set, and keeps serving.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from .servers import DecisionServiceProcess

pytestmark = pytest.mark.integration

ROUTE = "/routeiq.decision.v1.DecisionService/Route"
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "openai/gpt-4o", "mystery", ""]


@pytest.fixture(scope="module")
def service(knn_bundle_dir: Path, encoder_dir: Path) -> Iterator[DecisionServiceProcess]:
    with DecisionServiceProcess(
        knn_bundle_dir, encoder_dir, ROUTEIQ_MAX_PROMPT_CHARS="100000"
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def channel(service: DecisionServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        service.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as ch:
        yield ch


def _assert_serving(channel: grpc.Channel) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_non_utf8_prompt_is_invalid_argument(channel):
    raw = channel.unary_unary(
        ROUTE, request_serializer=None, response_deserializer=pb.RouteResponse.FromString
    )
    candidate = pb.Candidate(id="a", model_name="gpt-4o").SerializeToString()
    bad_prompt = b"\xff\xfe not utf-8"
    message = (
        b"\x0a" + bytes([len(bad_prompt)]) + bad_prompt + b"\x1a" + bytes([len(candidate)])
    ) + candidate
    with pytest.raises(grpc.RpcError) as err:
        raw(message, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in err.value.details()
    _assert_serving(channel)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            pb.RouteRequest(
                prompt="x" * 3_000_000, candidates=[pb.Candidate(id="a", model_name="m")]
            ),
            "characters",
        ),
        (
            pb.RouteRequest(
                embedding=pb.Embedding(values=[math.inf] * 384),
                candidates=[pb.Candidate(id="a", model_name="m")],
            ),
            "NaN or infinite",
        ),
        (
            pb.RouteRequest(
                prompt="hi",
                candidates=[pb.Candidate(id="a", model_name="m", cost_per_million_tokens=-3)],
            ),
            "cost_per_million_tokens",
        ),
        (
            pb.RouteRequest(
                prompt="hi", candidates=[pb.Candidate(id="a", model_name="m")], cost_weight=1e9
            ),
            "cost_weight",
        ),
        (
            pb.RouteRequest(
                prompt="hi", candidates=[pb.Candidate(id="a", model_name="m")], strategy="magic"
            ),
            "unknown strategy",
        ),
    ],
)
def test_more_bad_input_is_invalid_argument(channel, request_, message):
    with pytest.raises(grpc.RpcError) as err:
        pb_grpc.DecisionServiceStub(channel).Route(request_, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


_floats = st.floats(allow_nan=True, allow_infinity=True, width=32, allow_subnormal=False)
_candidate = st.builds(
    lambda i, m, c: pb.Candidate(
        id=i, model_name=m, **({} if c is None else {"cost_per_million_tokens": c})
    ),
    st.sampled_from(["a", "b", "c", "d", "", "x" * 300]),
    st.sampled_from(MODELS),
    st.none() | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
)


@st.composite
def _requests(draw: st.DrawFn) -> pb.RouteRequest:
    request = pb.RouteRequest(candidates=draw(st.lists(_candidate, max_size=8)))
    kind = draw(st.sampled_from(["prompt", "embedding", "none", "huge"]))
    if kind == "prompt":
        request.prompt = draw(st.text(max_size=400))
    elif kind == "huge":
        request.prompt = draw(st.sampled_from(["é", "a b ", "🙂"])) * draw(
            st.integers(50_000, 200_000)
        )
    elif kind == "embedding":
        size = draw(st.sampled_from([0, 1, 383, 384, 385]))
        request.embedding.values.extend(draw(st.lists(_floats, min_size=size, max_size=size)))
    if draw(st.booleans()):
        request.cost_weight = draw(
            st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False)
        )
    request.strategy = draw(
        st.sampled_from(["", "", "cheapest", "round-robin", "fixed-order", "?"])
    )
    request.user_id_hash = draw(st.text(max_size=20))
    return request


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=_requests())
def test_random_requests_never_crash_or_answer_outside_the_candidates(channel, request):
    stub = pb_grpc.DecisionServiceStub(channel)
    try:
        reply = stub.Route(request, timeout=60)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
        assert exc.details()
        return
    sent = [c.id for c in request.candidates]
    assert sorted(r.id for r in reply.ranked) == sorted(sent)
    assert len(set(sent)) == len(sent)


def test_still_serving_after_the_fuzzing(channel, service):
    _assert_serving(channel)
    assert service.process is not None and service.process.poll() is None


# ---- TLS ------------------------------------------------------------------------------


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    *,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, bytes | Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("routeiq-test-ca", ca_key, None, None, ca=True)
    server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    server = _cert("localhost", server_key, ca, ca_key, ca=False)
    client = _cert("gateway", client_key, ca, ca_key, ca=False)
    files = {
        "ca": _pem(ca),
        "server_cert": _pem(server),
        "server_key": _pem(server_key),
        "client_cert": _pem(client),
        "client_key": _pem(client_key),
    }
    out: dict[str, bytes | Path] = dict(files)
    for name, data in files.items():
        (folder / f"{name}.pem").write_bytes(data)
        out[f"{name}_file"] = folder / f"{name}.pem"
    return out


def _route_ok(channel: grpc.Channel) -> None:
    reply = pb_grpc.DecisionServiceStub(channel).Route(
        pb.RouteRequest(prompt="hello", candidates=[pb.Candidate(id="a", model_name="gpt-4o")]),
        timeout=30,
    )
    assert [r.id for r in reply.ranked] == ["a"]


def test_tls_and_mutual_tls(knn_bundle_dir, encoder_dir, pki):
    proc = DecisionServiceProcess(
        knn_bundle_dir,
        encoder_dir,
        ROUTEIQ_TLS_CERT_FILE=str(pki["server_cert_file"]),
        ROUTEIQ_TLS_KEY_FILE=str(pki["server_key_file"]),
        ROUTEIQ_TLS_CLIENT_CA_FILE=str(pki["ca_file"]),
    )
    with_client_cert = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"],  # type: ignore[arg-type]
        private_key=pki["client_key"],  # type: ignore[arg-type]
        certificate_chain=pki["client_cert"],  # type: ignore[arg-type]
    )
    proc.channel_credentials = with_client_cert
    proc.start()
    try:
        with grpc.secure_channel(proc.address, with_client_cert) as ch:
            _route_ok(ch)
        # No client certificate: the handshake fails, nothing is served.
        anonymous = grpc.ssl_channel_credentials(root_certificates=pki["ca"])  # type: ignore[arg-type]
        with (
            grpc.secure_channel(proc.address, anonymous) as ch,
            pytest.raises(grpc.RpcError) as err,
        ):
            _route_ok(ch)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        # Plaintext to a TLS port fails too.
        with grpc.insecure_channel(proc.address) as ch, pytest.raises(grpc.RpcError):
            _route_ok(ch)
    finally:
        assert proc.stop() == 0
