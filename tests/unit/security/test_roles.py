from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from joblet.api import joblet_pb2
from joblet.security import certs
from joblet.security.roles import (
    PEER_CERT_KEY,
    VIEWER_METHODS,
    Caller,
    Role,
    caller_from_auth_context,
    is_allowed,
    role_from_auth_context,
    role_from_cert_pem,
)

# Every RPC of the public API that changes something: a viewer gets none of them.
WRITE_METHODS = {
    "/joblet.JobService/UploadFiles",
    "/joblet.JobService/WriteJobStdin",
    "/joblet.JobService/RunJob",
    "/joblet.JobService/StopJob",
    "/joblet.JobService/CancelJob",
    "/joblet.JobService/DeleteJob",
    "/joblet.JobService/DeleteAllJobs",
    "/joblet.JobService/RunWorkflow",
    "/joblet.JobService/StopWorkflow",
    "/joblet.JobService/DeleteWorkflow",
    "/joblet.NetworkService/CreateNetwork",
    "/joblet.NetworkService/RemoveNetwork",
    "/joblet.VolumeService/CreateVolume",
    "/joblet.VolumeService/RemoveVolume",
    "/joblet.RuntimeService/TestRuntime",
    "/joblet.RuntimeService/InstallRuntimeFromGithub",
    "/joblet.RuntimeService/InstallRuntimeFromLocal",
    "/joblet.RuntimeService/StreamingInstallRuntimeFromGithub",
    "/joblet.RuntimeService/StreamingInstallRuntimeFromLocal",
    "/joblet.RuntimeService/RemoveRuntime",
}


def _all_api_methods() -> set[str]:
    return {
        f"/{service.full_name}/{method.name}"
        for service in joblet_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


@pytest.fixture(scope="module")
def ca() -> certs.CertKeyPair:
    return certs.generate_ca()


def _client(ca: certs.CertKeyPair, role: str, name: str = "someone") -> str:
    return certs.issue_client_cert(ca.cert_pem, ca.key_pem, role, name)[0]


def _cert_with_subject(attributes: list[x509.NameAttribute[str]]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(attributes)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_admin_and_viewer_certificates_map_to_their_roles(ca: certs.CertKeyPair) -> None:
    assert role_from_cert_pem(_client(ca, "admin")) is Role.ADMIN
    assert role_from_cert_pem(_client(ca, "viewer").encode()) is Role.VIEWER


@pytest.mark.parametrize("ou", ["guest", "Admin", "admin ", "root"])
def test_unknown_ou_has_no_role(ca: certs.CertKeyPair, ou: str) -> None:
    assert role_from_cert_pem(_client(ca, ou)) is None


def test_no_ou_or_several_ous_have_no_role() -> None:
    cn = x509.NameAttribute(NameOID.COMMON_NAME, "x")
    admin = x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "admin")
    viewer = x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "viewer")
    assert role_from_cert_pem(_cert_with_subject([cn])) is None
    assert role_from_cert_pem(_cert_with_subject([admin, viewer, cn])) is None
    assert role_from_cert_pem(_cert_with_subject([admin])) is Role.ADMIN


def test_garbage_is_not_a_certificate() -> None:
    assert role_from_cert_pem("not a certificate") is None


def test_auth_context_gives_caller_name_and_role(ca: certs.CertKeyPair) -> None:
    pem = _client(ca, "viewer", "carol").encode()
    context = {PEER_CERT_KEY: [pem], "transport_security_type": [b"ssl"]}
    assert caller_from_auth_context(context) == Caller(name="carol", role=Role.VIEWER)
    assert role_from_auth_context(context) is Role.VIEWER


def test_auth_context_without_peer_certificate_has_no_role() -> None:
    assert role_from_auth_context({}) is None
    assert role_from_auth_context({PEER_CERT_KEY: []}) is None


def test_viewer_table_names_only_real_read_rpcs() -> None:
    api = _all_api_methods()
    assert VIEWER_METHODS.issubset(api)
    assert api - VIEWER_METHODS == WRITE_METHODS
    # WatchWorkflow, ListJobPages, ClusterService.ListClusterNodes, GpuService.ListGpus
    # and UiService.CreateUiLogin joined the v1.0.9 reads
    assert len(VIEWER_METHODS) == 21


@pytest.mark.parametrize("method", sorted(_all_api_methods()))
def test_admin_may_call_everything_viewer_only_reads(method: str) -> None:
    assert is_allowed(Role.ADMIN, method)
    assert is_allowed(Role.VIEWER, method) is (method not in WRITE_METHODS)
    assert not is_allowed(None, method)


def test_viewer_is_denied_unknown_methods() -> None:
    assert not is_allowed(Role.VIEWER, "/joblet.JobService/Anything")
    assert not is_allowed(Role.VIEWER, "ListJobs")
    assert is_allowed(Role.VIEWER, "/joblet.JobService/ListJobs")
