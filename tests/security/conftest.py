"""The security tests reuse the integration suite's real daemons."""

from integration.conftest import daemon, make_daemon

__all__ = ["daemon", "make_daemon"]
