"""How a `joblet` command ends on the failures every one of them reports
alike: one line on stderr and an exit code, never a traceback. Shared by
`joblet` itself and the UI's serving process (which must not import the
daemon's entry module)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from joblet.errors import JobletError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def run_command(body: Callable[[], int]) -> int:
    """`body`'s exit code, or the code of the failure it ended with."""
    try:
        return body()
    except JobletError as exc:
        print(f"joblet: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except PermissionError as exc:
        print(f"joblet: error: {exc.strerror}: {exc.filename} (run as root)", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
