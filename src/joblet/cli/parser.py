"""The argparse pieces shared by every rnx command."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

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


ParserFiller = Callable[[RnxArgumentParser], None]


class LazySubParsersAction(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Sub-commands whose arguments are added only once they are chosen.

    Listing a command (in `--help`, in "invalid choice" errors) needs only its
    name and help line; its arguments, and the module that defines them, are
    needed only when it runs. Building every parser of rnx up front cost more
    than a whole `rnx job list` should.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fillers: dict[str, ParserFiller] = {}

    def add_lazy_parser(self, name: str, fill: ParserFiller, **kwargs: Any) -> RnxArgumentParser:
        """Register `name`; `fill(parser)` adds its arguments when it is chosen."""
        parser: RnxArgumentParser = self.add_parser(name, **kwargs)
        self._fillers[name] = fill
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values and not isinstance(values, str):
            fill = self._fillers.pop(values[0], None)
            if fill is not None:
                fill(self._name_parser_map[values[0]])
        super().__call__(parser, namespace, values, option_string)


def add_lazy_subparsers(parser: argparse.ArgumentParser, metavar: str) -> LazySubParsersAction:
    action = parser.add_subparsers(metavar=metavar, required=True, action=LazySubParsersAction)
    assert isinstance(action, LazySubParsersAction)
    return action
