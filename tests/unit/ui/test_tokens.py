"""Login tokens: signed, bound to role and CN, expiring, redeemed once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from joblet.ui.tokens import (
    NONCE_BYTES,
    Redeemer,
    TokenError,
    load_or_create_key,
    mint_token,
    read_token,
)

KEY = bytes(range(32))


def test_a_token_carries_role_cn_and_256_random_bits() -> None:
    token = mint_token(KEY, "viewer", "alice", now=1000.0)
    grant = read_token(KEY, token, now=1010.0)
    assert (grant.role, grant.cn, grant.expires_at) == ("viewer", "alice", 1060.0)
    assert len(grant.nonce) == NONCE_BYTES == 32
    assert mint_token(KEY, "viewer", "alice", now=1000.0) != token


def test_an_expired_token_is_refused() -> None:
    token = mint_token(KEY, "admin", "bob", now=1000.0)
    with pytest.raises(TokenError, match="expired"):
        read_token(KEY, token, now=1060.0)


def test_a_token_works_once() -> None:
    redeemer = Redeemer(KEY)
    token = mint_token(KEY, "admin", "bob", now=1000.0)
    assert redeemer.redeem(token, now=1001.0).role == "admin"
    with pytest.raises(TokenError, match="already used"):
        redeemer.redeem(token, now=1002.0)


@pytest.mark.parametrize("change", ["role", "key", "garbage", "truncated"])
def test_a_forged_or_altered_token_is_refused(change: str) -> None:
    token = mint_token(KEY, "viewer", "alice", now=1000.0)
    body, _, sig = token.partition(".")
    if change == "role":  # lift viewer (1) to admin (0): the signature no longer holds
        import base64

        raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        raw[40] = 0
        token = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode() + "." + sig
    elif change == "key":
        token = mint_token(bytes(32), "viewer", "alice", now=1000.0)
    elif change == "garbage":
        token = "not a token"
    else:
        token = body
    with pytest.raises(TokenError):
        read_token(KEY, token, now=1001.0)


def test_unknown_role_and_bad_ttl_are_refused() -> None:
    with pytest.raises(TokenError, match="role"):
        mint_token(KEY, "root", "x", now=0.0)
    with pytest.raises(TokenError, match="positive"):
        mint_token(KEY, "admin", "x", now=0.0, ttl_s=0)


def test_the_key_file_is_made_root_only_once(tmp_path: Path) -> None:
    path = tmp_path / "ui-login.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(path) == key
