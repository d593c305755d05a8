"""Sign-in with a client certificate: under TLS the UI asks for an optional
client certificate from our CA (the handshake refuses one from another CA);
GET /login/cert turns the one presented into a session whose role is the
certificate's OU. Node certificates and revoked ones are refused."""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from joblet.ui.app import render, state_of
from joblet.ui.pages import start_session
from joblet.ui.tokens import ROLES

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger("joblet.ui")
# cryptography costs the process ~8 MB: loaded only under TLS (by `joblet ui`
# before it drops root, see serve.warm_up), the one case a certificate comes
TLS_IMPORTS = ("cryptography.x509", "cryptography.x509.oid")


class CertRefused(Exception):
    """A presented certificate that may not sign in (the message says why)."""


@dataclass(frozen=True)
class CertIdentity:
    role: str
    cn: str
    serial: int


def _attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def identity_of(der: bytes, revoked: frozenset[int]) -> CertIdentity:
    """Role (the OU), CN and serial of a verified client certificate; pure."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    role, cn = (
        _attribute(cert, NameOID.ORGANIZATIONAL_UNIT_NAME),
        _attribute(cert, NameOID.COMMON_NAME),
    )
    if role not in ROLES:
        raise CertRefused(f"a certificate of role {role or '(none)'!r} cannot sign in to the UI")
    if cert.serial_number in revoked:
        raise CertRefused(f"the certificate of {cn!r} has been revoked")
    return CertIdentity(role, cn, cert.serial_number)


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER of the client certificate the TLS handshake verified, if any."""
    tls = request.transport.get_extra_info("ssl_object") if request.transport else None
    if not isinstance(tls, ssl.SSLObject):
        return None
    return tls.getpeercert(binary_form=True)


async def login_with_certificate(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    der = peer_certificate(request)
    if der is None:
        message = "no client certificate was presented (sign-in with a certificate needs HTTPS)"
        return render(request, "login.html", status=401, error=message)
    revoked: frozenset[int] = frozenset()
    if state.revocations is not None:
        with contextlib.suppress(OSError):  # unreadable now: the list read at start stays
            state.revocations.check()
        revoked = state.revocations.revoked()
    try:
        who = identity_of(der, revoked)
    except (CertRefused, ValueError) as exc:
        log.warning("refused a certificate sign-in from %s: %s", request.remote, exc)
        return render(request, "login.html", status=403, error=str(exc))
    log.info("client certificate %x of %s accepted", who.serial, who.cn)
    return start_session(request, who.role, who.cn, "certificate")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login/cert", login_with_certificate)
