"""The serving process of `joblet ui` (exec'd by it; see joblet.ui.handoff):
it imports the web stack and the UI, never the config parser."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from joblet.deferred import UNUSED_BY_DAEMON_AT_IDLE, defer_imports


def main(argv: Sequence[str] | None = None) -> int:
    defer_imports(UNUSED_BY_DAEMON_AT_IDLE)
    from joblet.command_exit import run_command
    from joblet.ui.handoff import read_handoff
    from joblet.ui.serve import serve_ui

    parser = argparse.ArgumentParser(prog="joblet ui", add_help=False)
    parser.add_argument("--handoff-fd", type=int, required=True)
    args = parser.parse_args(argv)

    def serve() -> int:
        handoff = read_handoff(args.handoff_fd)
        logging.basicConfig(
            level=handoff.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        serve_ui(handoff)
        return 0

    return run_command(serve)


if __name__ == "__main__":
    sys.exit(main())
