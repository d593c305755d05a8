"""Errors the client side raises: a one-line message plus the process exit code.

Kept free of grpc imports so that the CLI can start without loading grpc.
"""

from __future__ import annotations

# Exit codes shared by every rnx command.
EXIT_FAILURE = 1  # the operation failed (daemon unreachable, job not found, ...)
EXIT_USAGE = 2  # bad command line or bad client configuration
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class CliError(Exception):
    """A failure to report as `rnx: error: <message>` with `exit_code`.

    `code` names it for scripts (`--json` errors): a gRPC status name
    ("NOT_FOUND") for a failed call, else USAGE, CONFIG or FAILED."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code or ("USAGE" if exit_code == EXIT_USAGE else "FAILED")


class ClientConfigError(CliError):
    """The rnx config is missing, unreadable or malformed (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE, "CONFIG")
