"""Error translation, channel options, and real mutual TLS over loopback."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.client.config import NodeConfig
from joblet.client.connection import (
    JobClient,
    channel_options,
    describe_transport_failure,
    open_secure_channel,
    rpc_error_message,
)
from joblet.client.errors import CliError

ADDR = "10.0.0.5:50051"
REFUSED = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.5:50051: "
    "Failed to connect to remote host: Connection refused"
)


def test_unavailable_names_address_cause_and_hint() -> None:
    message = rpc_error_message(grpc.StatusCode.UNAVAILABLE, REFUSED, ADDR)
    assert message == (
        f"cannot reach joblet at {ADDR}: connection refused (is the daemon running?)"
    )
    odd = rpc_error_message(grpc.StatusCode.UNAVAILABLE, "something\nnew", ADDR)
    assert odd == (
        f"cannot reach joblet at {ADDR}: something new (is the daemon running? is the CA right?)"
    )


def test_unavailable_the_daemon_answered_is_its_message_without_the_hint() -> None:
    details = "history store unreachable: reading it/n/j/manifest.json: timed out"
    message = rpc_error_message(grpc.StatusCode.UNAVAILABLE, details, ADDR, answered=True)
    assert message == f"joblet at {ADDR}: {details}"


@pytest.mark.parametrize(
    ("details", "names"),
    [
        (
            "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED",
            "wrong CA",
        ),
        ("UNAVAILABLE: ipv4:127.0.0.1:5: Socket closed", "client certificate"),
        ("recvmsg:Connection reset by peer", "client certificate"),
        ("Custom verification check failed: Hostname Verification Check failed.", "serverName"),
        ("errors resolving nosuch.invalid:1: Domain name not found", "resolve"),
        ("Ssl handshake failed: weird", "wrong client certificate or wrong CA"),
    ],
)
def test_transport_failures_name_the_likely_cause(details: str, names: str) -> None:
    cause = describe_transport_failure(details)
    assert cause is not None and names in cause


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, "job abc not found", "job abc not found"),
        (grpc.StatusCode.INVALID_ARGUMENT, "maxCpu must be >= 0", "maxCpu must be >= 0"),
        (grpc.StatusCode.FAILED_PRECONDITION, "job is not running", "job is not running"),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            "viewer may not RunJob",
            "permission denied: viewer may not RunJob",
        ),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", f"joblet at {ADDR} did not answer in time"),
        (
            grpc.StatusCode.UNIMPLEMENTED,
            "Method not found",
            f"joblet at {ADDR} does not support this operation: Method not found",
        ),
        (grpc.StatusCode.INTERNAL, "oops", f"joblet at {ADDR} failed (INTERNAL): oops"),
        (grpc.StatusCode.NOT_FOUND, "", "not found"),
    ],
)
def test_status_codes_become_one_line(code: grpc.StatusCode, details: str, expected: str) -> None:
    assert rpc_error_message(code, details, ADDR) == expected


def test_an_invalid_argument_listing_problems_keeps_a_line_per_problem() -> None:
    details = "workflow is invalid (2 problems):\nline 3: a:  bad\r\n\nline 4: b: worse\n"
    message = rpc_error_message(grpc.StatusCode.INVALID_ARGUMENT, details, ADDR)
    assert message == "workflow is invalid (2 problems):\nline 3: a: bad\nline 4: b: worse"
    many = "head:\n" + "\n".join(f"line {i}: x" for i in range(300))
    assert len(rpc_error_message(grpc.StatusCode.INVALID_ARGUMENT, many, ADDR).splitlines()) == 101


def test_server_name_override_option() -> None:
    node = NodeConfig("n", "10.0.0.5:1", "c", "k", "ca", server_name="joblet.lan")
    assert ("grpc.ssl_target_name_override", "joblet.lan") in channel_options(node)
    plain = NodeConfig("n", "10.0.0.5:1", "c", "k", "ca")
    assert all(key != "grpc.ssl_target_name_override" for key, _ in channel_options(plain))


# --- real mutual TLS -------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(_name(name), _name(name), key).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
        return cls(key, builder.sign(key, hashes.SHA256()))

    def issue(self, name: str, sans: list[x509.GeneralName] | None = None) -> tuple[str, str]:
        """(key PEM, certificate PEM) signed by this authority."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(_name(name), self.cert.subject, key)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM).decode()


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


class Lister(pb_grpc.JobServiceServicer):
    def ListJobs(self, request: pb.EmptyRequest, context: grpc.ServicerContext) -> pb.Jobs:
        return pb.Jobs(jobs=[pb.Job(uuid="tls-ok")])


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca: Authority
    client_key: str
    client_cert: str

    def node(self, **changes: str) -> NodeConfig:
        fields = {
            "address": f"127.0.0.1:{self.port}",
            "cert": self.client_cert,
            "key": self.client_key,
            "ca": self.ca.pem,
            **changes,
        }
        return NodeConfig(name="default", **fields)


@contextmanager
def _serve(ca: Authority, sans: list[x509.GeneralName]) -> Iterator[TlsServer]:
    server_key, server_cert = ca.issue("joblet", sans)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_JobServiceServicer_to_server(Lister(), server)  # type: ignore[no-untyped-call]
    credentials = grpc.ssl_server_credentials(
        [(server_key.encode(), server_cert.encode())],
        root_certificates=ca.pem.encode(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    client_key, client_cert = ca.issue("admin")
    yield TlsServer(port, ca, client_key, client_cert)
    server.stop(grace=None)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    with _serve(Authority.create("test-ca"), sans) as server:
        yield server


def _list(node: NodeConfig) -> list[str]:
    channel = open_secure_channel(node)
    try:
        return [job.uuid for job in JobClient(channel, node.address).list_jobs().jobs]
    finally:
        channel.close()


def test_mutual_tls_works_with_the_right_credentials(tls_server: TlsServer) -> None:
    assert _list(tls_server.node()) == ["tls-ok"]
    assert _list(tls_server.node(address=f"localhost:{tls_server.port}")) == ["tls-ok"]


def test_wrong_ca_is_named(tls_server: TlsServer) -> None:
    with pytest.raises(CliError) as caught:
        _list(tls_server.node(ca=Authority.create("other-ca").pem))
    assert caught.value.exit_code == 1
    assert caught.value.message.startswith(f"cannot reach joblet at 127.0.0.1:{tls_server.port}")
    assert "wrong CA" in caught.value.message


def test_client_certificate_from_another_ca_is_named(tls_server: TlsServer) -> None:
    key, cert = Authority.create("rogue-ca").issue("admin")
    with pytest.raises(CliError) as caught:
        _list(tls_server.node(key=key, cert=cert))
    assert "client certificate" in caught.value.message


def test_server_name_override_for_an_address_not_in_the_certificate() -> None:
    sans: list[x509.GeneralName] = [x509.DNSName("joblet.internal")]
    with _serve(Authority.create("name-ca"), sans) as server:
        with pytest.raises(CliError, match="serverName"):
            _list(server.node())
        assert _list(server.node(server_name="joblet.internal")) == ["tls-ok"]
