"""`joblet certs issue --p12`: a client certificate as a PKCS#12 bundle a
browser imports (certificate, key and our CA), to sign in to the web UI."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from joblet.errors import JobletError

P12_MODE = 0o600
MAX_PASSWORD_BYTES = 1024


class P12Error(JobletError):
    """A bundle that cannot be made or written (the message says why)."""


def bundle(name: str, cert_pem: str, key_pem: str, ca_pem: str, password: bytes | None) -> bytes:
    """The PKCS#12 bytes; encrypted with `password` when one is given."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise P12Error("the client key is neither an EC nor an RSA key")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if password:
        encryption = serialization.BestAvailableEncryption(password)
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [ca], encryption)


def read_password(path: Path | None) -> bytes | None:
    """The first line of `path` (never a command-line argument: ps shows those)."""
    if path is None:
        return None
    try:
        lines = path.read_bytes()[: MAX_PASSWORD_BYTES + 1].splitlines()
    except OSError as exc:
        raise P12Error(f"cannot read the password file {path}: {exc.strerror}") from exc
    password = lines[0] if lines else b""
    if not password or len(password) > MAX_PASSWORD_BYTES:
        raise P12Error(f"the password file {path} must hold a password on its first line")
    return password


def write_bundle(path: Path, data: bytes) -> None:
    """Write `data` to a new file of mode 0600 (never over an existing one)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, P12_MODE)
    except FileExistsError:
        raise P12Error(f"{path} exists already; choose another file") from None
    except OSError as exc:
        raise P12Error(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), P12_MODE)  # the umask may have narrowed it, never widened
        out.write(data)
