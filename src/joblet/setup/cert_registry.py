"""The record of every client certificate the CA under a root issued, and
their revocation: `ROOT/certs/index.json` and the CRL `ROOT/certs/crl.pem`.

`joblet setup` and `joblet certs issue` add to the index; `joblet certs
revoke` marks entries revoked and writes a new CRL signed by the CA, which a
running daemon picks up within a couple of seconds. Changes hold an exclusive
lock on `ROOT/certs/.lock`, so two commands at once never lose an entry.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from joblet.config.model import RootLayout
from joblet.security.revocation import (
    RevocationError,
    Revoked,
    build_crl,
    format_serial,
    parse_serial,
)
from joblet.setup.layout import PRIVATE_MODE, PUBLIC_MODE, SetupError, read_text, write_file

INDEX_NAME = "index.json"
CERTS_DIR_MODE = 0o755


@dataclass(frozen=True)
class IssuedCert:
    """One entry of the index; times are RFC 3339 UTC text, `revoked_at` "" while valid."""

    name: str
    role: str
    serial: str  # hex, as format_serial writes it
    not_after: str
    issued_at: str
    revoked_at: str = ""


@dataclass(frozen=True)
class Index:
    certs: tuple[IssuedCert, ...] = ()
    crl_number: int = 0


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_for(cert_pem: str, role: str, name: str, now: datetime | None = None) -> IssuedCert:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return IssuedCert(
        name=name,
        role=role,
        serial=format_serial(cert.serial_number),
        not_after=rfc3339(cert.not_valid_after_utc),
        issued_at=rfc3339(now or datetime.now(UTC)),
    )


def parse_index(text: str) -> Index:
    """The index from its JSON text; ValueError when it is not one."""
    raw = json.loads(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("certificates"), list):
        raise ValueError("no 'certificates' list")
    entries = tuple(_entry(item) for item in raw["certificates"])
    return Index(entries, int(raw.get("crlNumber", 0)))


def _entry(item: Any) -> IssuedCert:
    if not isinstance(item, dict):
        raise ValueError("an entry is not a mapping")
    return IssuedCert(
        name=str(item["name"]),
        role=str(item["role"]),
        serial=str(item["serial"]),
        not_after=str(item["notAfter"]),
        issued_at=str(item["issuedAt"]),
        revoked_at=str(item.get("revokedAt") or ""),
    )


def render_index(index: Index) -> str:
    certificates = [
        {
            "name": c.name,
            "role": c.role,
            "serial": c.serial,
            "notAfter": c.not_after,
            "issuedAt": c.issued_at,
            "revokedAt": c.revoked_at or None,
        }
        for c in index.certs
    ]
    return json.dumps({"crlNumber": index.crl_number, "certificates": certificates}, indent=1)


def revoke_in(
    index: Index, name: str | None, serial: int | None, now: datetime
) -> tuple[Index, list[IssuedCert]]:
    """Mark the valid entries named `name` (or with `serial`) revoked: the new
    index and the entries revoked. A serial the index does not know is added
    (a certificate issued before the index existed)."""
    stamp = rfc3339(now)
    hit: list[IssuedCert] = []
    updated: list[IssuedCert] = []
    for cert in index.certs:
        matches = cert.name == name if name is not None else cert.serial == _hex(serial)
        if matches and not cert.revoked_at:
            hit.append(replace(cert, revoked_at=stamp))
            updated.append(hit[-1])
        else:
            updated.append(cert)
    if not hit and serial is not None and not any(c.serial == _hex(serial) for c in index.certs):
        unknown = IssuedCert("", "", _hex(serial), "", "", revoked_at=stamp)
        updated.append(unknown)
        hit.append(unknown)
    return Index(tuple(updated), index.crl_number + (1 if hit else 0)), hit


def _hex(serial: int | None) -> str:
    return "" if serial is None else format_serial(serial)


def revoked_entries(index: Index) -> list[Revoked]:
    return [
        Revoked(int(c.serial, 16), _parse_time(c.revoked_at)) for c in index.certs if c.revoked_at
    ]


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- the files -------------------------------------------------------------


@contextmanager
def _locked(layout: RootLayout) -> Iterator[Path]:
    directory = layout.certs
    try:
        directory.mkdir(mode=CERTS_DIR_MODE, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
    except OSError as exc:
        raise SetupError(f"cannot use {directory}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)


def load_index(layout: RootLayout) -> Index:
    path = layout.certs / INDEX_NAME
    if not path.exists():
        return Index()
    try:
        return parse_index(read_text(path, ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise SetupError(f"{path} is not a valid certificate index: {exc}") from exc


def record_issued(layout: RootLayout, entries: list[IssuedCert], *, fresh: bool = False) -> None:
    """Add `entries` to the index; `fresh`: a new CA, so start a new index and
    drop the old CA's CRL (its serials mean nothing to the new one)."""
    with _locked(layout) as directory:
        index = Index() if fresh else load_index(layout)
        merged = Index((*index.certs, *entries), index.crl_number)
        write_file(directory / INDEX_NAME, render_index(merged), PRIVATE_MODE)
        if fresh:
            layout.crl.unlink(missing_ok=True)


def revoke(
    layout: RootLayout,
    ca_cert_pem: str,
    ca_key_pem: str,
    *,
    name: str | None = None,
    serial: str | None = None,
    now: datetime | None = None,
) -> list[IssuedCert]:
    """Revoke by name or serial, write the index and a new CRL; the entries revoked."""
    if (name is None) == (serial is None):
        raise SetupError("give exactly one of a name and a serial")
    try:
        number = None if serial is None else parse_serial(serial)
    except ValueError as exc:
        raise SetupError(str(exc)) from exc
    with _locked(layout) as directory:
        index, hit = revoke_in(load_index(layout), name, number, now or datetime.now(UTC))
        if not hit:
            what = f"named {name!r}" if name is not None else f"with serial {serial}"
            raise SetupError(f"no valid certificate {what} in {directory / INDEX_NAME}")
        try:
            crl = build_crl(ca_cert_pem, ca_key_pem, revoked_entries(index), index.crl_number, now)
        except (RevocationError, ValueError) as exc:
            raise SetupError(f"cannot sign the CRL: {exc}") from exc
        # The CRL first: an index saying "revoked" before the CRL does would lie.
        write_file(layout.crl, crl, PUBLIC_MODE)
        write_file(directory / INDEX_NAME, render_index(index), PRIVATE_MODE)
    return hit
