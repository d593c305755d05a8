"""gRPC credentials for joblet's mutual TLS.

TLS versions: grpcio's Python API (1.85) cannot set a minimum or maximum TLS
version on either side (grpc/grpc#37305; the server-side options are still an
open pull request, grpc/grpc#43080). gRPC core's own defaults apply instead:
TLS 1.2 minimum, TLS 1.3 maximum, so 1.3 is negotiated whenever the peer
offers it. tests/unit/security/test_tls.py checks both facts against a live
server, so an upgrade that changed the defaults would fail there.
"""

from __future__ import annotations

import grpc

from joblet.config.model import SecurityConfig


def server_credentials(security: SecurityConfig) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate signed by the CA."""
    return grpc.ssl_server_credentials(
        [(security.server_key.encode(), security.server_cert.encode())],
        root_certificates=security.ca_cert.encode(),
        require_client_auth=True,
    )


def channel_credentials(ca_pem: str, cert_pem: str, key_pem: str) -> grpc.ChannelCredentials:
    """Client credentials: trust only our CA, present the client's certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem.encode(),
        private_key=key_pem.encode(),
        certificate_chain=cert_pem.encode(),
    )
