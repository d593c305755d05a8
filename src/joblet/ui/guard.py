"""The UI's request checks, as pure functions the middleware applies:
Host names (no DNS rebinding onto loopback), same-origin POSTs, CSRF tokens.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # not no-referrer: under it Chromium sends `Origin: null` with a form POST
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def split_host(host: str) -> tuple[str, int | None]:
    """`Host` header -> (lower-case name, port or None); ("", None) if malformed."""
    parsed = urlsplit(f"//{host.strip()}")
    try:
        port = parsed.port
    except ValueError:
        return "", None
    if parsed.username is not None or parsed.password is not None or parsed.path:
        return "", None
    return (parsed.hostname or "").lower(), port


def host_allowed(host: str | None, allowed: frozenset[str], port: int) -> bool:
    """Whether a request's Host names this UI: a configured name and our port
    (a browser that resolved evil.example to 127.0.0.1 still sends evil.example)."""
    name, given = split_host(host or "")
    return bool(name) and name in allowed and given in (None, port)


def same_origin(origin: str | None, scheme: str, host: str | None) -> bool:
    """Whether `Origin` is this UI's own origin (scheme://Host)."""
    if not origin or not host or origin == "null":
        return False
    return origin.rstrip("/").lower() == f"{scheme}://{host.strip()}".lower()


def csrf_ok(sent: str | None, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent), expected)
