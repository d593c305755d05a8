"""The argparse pieces shared by every rnx command."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from joblet.client.errors import EXIT_USAGE, CliError


class RnxArgumentParser(argparse.ArgumentParser):
    """Reports usage errors as `CliError` so that `main` prints one line."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


if TYPE_CHECKING:  # the class is not subscriptable at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[RnxArgumentParser]


def add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--config", metavar="FILE", default=default, help="client config file")
    parser.add_argument(
        "--node",
        metavar="NAME",
        default=default,
        help="config node to use (default: default)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default, help="print responses as JSON, one per line"
    )
