"""One-time login tokens: minted by the daemon (`rnx ui`) or `joblet ui token`,
redeemed once by the UI process.

A token is 256 random bits plus the role, CN and expiry it is bound to,
signed with HMAC-SHA256 under a key both sides read from a root-only file
(ROOT/config/ui-login.key). The UI keeps the nonces it has redeemed until they
expire, so a token works once. Pure logic apart from `load_or_create_key`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

from joblet.errors import JobletError

KEY_BYTES = 32
NONCE_BYTES = 32  # 256 bits
LOGIN_TTL_S = 60.0
KEY_MODE = 0o600
ROLES = ("admin", "viewer")
_HEADER = struct.Struct(">32sdB")  # nonce, expiry (unix seconds), role index


class TokenError(JobletError):
    """A login token that is malformed, forged, expired or already used."""


@dataclass(frozen=True)
class LoginGrant:
    """What a redeemed token grants: a session of this role and CN."""

    role: str
    cn: str
    nonce: bytes
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_token(key: bytes, role: str, cn: str, now: float, ttl_s: float = LOGIN_TTL_S) -> str:
    """A new token for `role` and `cn`, valid for `ttl_s` from `now`."""
    if role not in ROLES:
        raise TokenError(f"role {role!r} is not one of: {', '.join(ROLES)}")
    if ttl_s <= 0:
        raise TokenError("a token's lifetime must be positive")
    payload = _HEADER.pack(secrets.token_bytes(NONCE_BYTES), now + ttl_s, ROLES.index(role))
    payload += cn.encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def read_token(key: bytes, token: str, now: float) -> LoginGrant:
    """The grant a token carries if its signature holds and it has not expired."""
    body, dot, sig = token.strip().partition(".")
    try:
        payload, mac = _unb64(body), _unb64(sig)
    except ValueError as exc:
        raise TokenError("the login token is malformed") from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not dot or len(payload) < _HEADER.size or not hmac.compare_digest(mac, expected):
        raise TokenError("the login token is not valid")
    nonce, expires_at, role_index = _HEADER.unpack_from(payload)
    if role_index >= len(ROLES):
        raise TokenError("the login token is not valid")
    if now >= expires_at:
        raise TokenError("the login token has expired")
    return LoginGrant(ROLES[role_index], payload[_HEADER.size :].decode(), nonce, expires_at)


@dataclass
class Redeemer:
    """Redeems each token once: remembers the nonces seen until they expire."""

    key: bytes
    _used: dict[bytes, float] = field(default_factory=dict)

    def redeem(self, token: str, now: float) -> LoginGrant:
        grant = read_token(self.key, token, now)
        self._used = {n: t for n, t in self._used.items() if t > now}
        if grant.nonce in self._used:
            raise TokenError("the login token was already used")
        self._used[grant.nonce] = grant.expires_at
        return grant


def load_or_create_key(path: Path) -> bytes:
    """The signing key in `path`, made (root-only) on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise JobletError(f"cannot read the UI login key {path}: {exc}") from exc
    if len(key) < KEY_BYTES:
        raise JobletError(f"the UI login key {path} is too short")
    return key
