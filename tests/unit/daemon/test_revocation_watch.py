"""The daemon's CRL watch: no file, a CRL, a new one, a bad one."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from joblet.daemon.revocation_watch import RevocationWatch
from joblet.errors import ConfigError
from joblet.security import certs
from joblet.security.revocation import Revoked, build_crl

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> certs.CertKeyPair:
    return certs.generate_ca()


def _write(path: Path, ca: certs.CertKeyPair, *serials: int) -> None:
    text = build_crl(ca.cert_pem, ca.key_pem, [Revoked(s, NOW) for s in serials], len(serials))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # as `joblet certs revoke` does: a new inode


def test_no_file_revokes_nothing_and_a_new_crl_is_picked_up(
    tmp_path: Path, ca: certs.CertKeyPair
) -> None:
    path = tmp_path / "crl.pem"
    watch = RevocationWatch(path, ca.cert_pem)
    watch.load()
    assert watch.revoked() == frozenset() and not watch.check()
    _write(path, ca, 5)
    assert watch.check() and watch.revoked() == {5}
    assert not watch.check()  # unchanged file: not read again
    _write(path, ca, 5, 6)
    assert watch.check() and watch.revoked() == {5, 6}
    path.unlink()
    assert watch.check() and watch.revoked() == frozenset()


def test_a_bad_crl_stops_the_start_but_later_keeps_the_last_good_one(
    tmp_path: Path, ca: certs.CertKeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "crl.pem"
    path.write_text("not a CRL")
    with pytest.raises(ConfigError, match="certificate revocation list"):
        RevocationWatch(path, ca.cert_pem).load()
    _write(path, ca, 9)
    watch = RevocationWatch(path, ca.cert_pem)
    watch.load()
    other = certs.generate_ca()
    _write(path, other, 1)  # signed by someone else
    with caplog.at_level(logging.ERROR):
        assert not watch.check()
    assert watch.revoked() == {9}
    assert "ignored" in caplog.text


async def test_the_poll_sees_a_change_within_its_interval(
    tmp_path: Path, ca: certs.CertKeyPair
) -> None:
    path = tmp_path / "crl.pem"
    watch = RevocationWatch(path, ca.cert_pem)
    watch.load()
    task = asyncio.create_task(watch.run(interval=0.05))
    try:
        _write(path, ca, 3)
        async with asyncio.timeout(5):
            while watch.revoked() != {3}:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
