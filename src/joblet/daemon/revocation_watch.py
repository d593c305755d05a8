"""The daemon's view of the CRL under its root, reloaded as the file changes.

`joblet certs revoke` replaces the file by a rename, so a 1 s poll of its
stat (inode, size, mtime) sees every new CRL: cheaper and simpler than an
inotify watch on the directory, and a revoked certificate is refused within
about a second without a restart. A CRL that does not verify at start stops
the start; one that turns bad later is ignored (the last good one stays) with
an error in the log, so a broken write cannot un-revoke anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from joblet.errors import ConfigError

log = logging.getLogger(__name__)

POLL_S = 1.0

_Signature = tuple[int, int, int] | None


class RevocationWatch:
    def __init__(self, path: Path, ca_cert_pem: str) -> None:
        self.path = path
        self._ca = ca_cert_pem
        self._serials: frozenset[int] = frozenset()
        self._seen: _Signature = None

    def revoked(self) -> frozenset[int]:
        """The serial numbers revoked now (what the interceptor asks every call)."""
        return self._serials

    def load(self) -> None:
        """Read the CRL at start: ConfigError when it is there but not valid."""
        signature = self._signature()
        try:
            self._serials = self._read(signature)
        except ValueError as exc:
            raise ConfigError(f"certificate revocation list {self.path}: {exc}") from exc
        self._seen = signature
        if self._serials:
            log.info("%d certificate(s) revoked (%s)", len(self._serials), self.path)

    def check(self) -> bool:
        """Reload the CRL if the file changed; whether the revoked set changed."""
        signature = self._signature()
        if signature == self._seen:
            return False
        self._seen = signature
        try:
            serials = self._read(signature)
        except (ValueError, OSError) as exc:
            log.error("certificate revocation list %s ignored, the last one stays: %s",
                      self.path, exc)  # fmt: skip
            return False
        changed = serials != self._serials
        self._serials = serials
        if changed:
            log.info("certificate revocation list reloaded: %d revoked", len(serials))
        return changed

    async def run(self, interval: float = POLL_S) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.check()

    def _signature(self) -> _Signature:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self, signature: _Signature) -> frozenset[int]:
        if signature is None:  # no CRL: nothing revoked
            return frozenset()
        from joblet.security.revocation import read_crl  # cryptography, only with a CRL

        return read_crl(self.path.read_bytes(), self._ca)
