"""Server-side sessions of signed-in browsers: the cookie holds a random id
only; role, CN and CSRF token stay here, so a session can be revoked. Pure."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field

from joblet.ui.config import LOCAL_NODE

SESSION_TTL_S = 12 * 3600.0
COOKIE_NAME = "joblet_session"


@dataclass(frozen=True)
class Session:
    sid: str
    role: str
    cn: str
    csrf: str
    expires_at: float
    node: str = LOCAL_NODE  # the node this session's pages talk to

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class SessionStore:
    ttl_s: float = SESSION_TTL_S
    _sessions: dict[str, Session] = field(default_factory=dict)

    def open(self, role: str, cn: str, now: float) -> Session:
        session = Session(
            secrets.token_urlsafe(32), role, cn, secrets.token_urlsafe(32), now + self.ttl_s
        )
        self._sessions[session.sid] = session
        return session

    def get(self, sid: str | None, now: float) -> Session | None:
        session = self._sessions.get(sid or "")
        if session is None:
            return None
        if now >= session.expires_at:
            del self._sessions[session.sid]
            return None
        return session

    def select_node(self, sid: str, node: str) -> Session | None:
        """Point the session's pages at `node` (the caller checked it exists)."""
        session = self._sessions.get(sid)
        if session is None:
            return None
        session = self._sessions[sid] = dataclasses.replace(session, node=node)
        return session

    def revoke(self, sid: str) -> bool:
        return self._sessions.pop(sid, None) is not None

    def revoke_cn(self, cn: str) -> int:
        """End every session of `cn` (its certificate was revoked, say)."""
        gone = [sid for sid, s in self._sessions.items() if s.cn == cn]
        for sid in gone:
            del self._sessions[sid]
        return len(gone)
