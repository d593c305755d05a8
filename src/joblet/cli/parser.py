"""The argparse pieces shared by every rnx command: one-line usage errors with
a did-you-mean and a pointer at the right `--help`, no abbreviated flags,
aliases, and groups that print their help when given no command."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from joblet.client.errors import EXIT_USAGE, CliError

_UNRECOGNIZED = "unrecognized arguments: "


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'list'?` for the closest choices, '' when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


class RnxArgumentParser(argparse.ArgumentParser):
    """Reports usage errors as `CliError` so that `main` prints one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # `--max` must not quietly mean `--max-memory`: a flag added later
        # would change what old command lines do.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.chosen: RnxArgumentParser = self  # the deepest command parsed so far

    def error(self, message: str) -> NoReturn:
        target = self.chosen
        if message.startswith(_UNRECOGNIZED):
            words = message[len(_UNRECOGNIZED) :].split()
            flag = next((w for w in words if w.startswith("-")), "")
            if flag:
                message += did_you_mean(flag.split("=", 1)[0], target.known_flags())
        raise CliError(f"{message} (see '{target.prog} --help')", EXIT_USAGE)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, LazySubParsersAction) and value not in action.choices:
            choices = list(action.choices)
            raise CliError(
                f"unknown command {value!r}{did_you_mean(str(value), choices)}"
                f" (see '{self.prog} --help')",
                EXIT_USAGE,
            )
        super()._check_value(action, value)

    def known_flags(self) -> list[str]:
        return [flag for flag in self._option_string_actions if flag.startswith("--")]


if TYPE_CHECKING:  # the class is not subscriptable at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[RnxArgumentParser]


def add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--config", metavar="FILE", default=default, help="client config file")
    parser.add_argument(
        "--node",
        metavar="NAME",
        default=default,
        help="config node to use (default: $RNX_NODE, else default); for reading"
        " commands also a,b or all: every one asked at once, answers merged",
    )
    parser.add_argument(
        "--node-timeout",
        type=_seconds,
        default=default,
        metavar="DURATION",
        help="with several nodes: how long each may take to answer (default: the"
        " config's nodeTimeout, else 3s)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=default,
        metavar="DURATION",
        help='how long to wait for the node to connect, e.g. "30s" (default 10s)',
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print responses as JSON, one per line (docs/json.md); errors as JSON on stderr",
    )
    parser.add_argument(
        "--json-compat",
        action="store_true",
        default=default,
        help="print the JSON the reference rnx prints (list, run, status, log)",
    )


def _seconds(text: str) -> float:
    from joblet.cli.units import parse_seconds

    try:
        seconds = parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0")
    return seconds


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
        self.root: RnxArgumentParser | None = None  # told the chosen parser, for errors

    def add_lazy_parser(
        self, name: str, fill: ParserFiller, aliases: Sequence[str] = (), **kwargs: Any
    ) -> RnxArgumentParser:
        """Register `name` (and `aliases`); `fill(parser)` adds its arguments
        when it is chosen."""
        parser: RnxArgumentParser = self.add_parser(name, aliases=list(aliases), **kwargs)
        for each in (name, *aliases):
            self._fillers[each] = fill
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values and not isinstance(values, str):
            name = values[0]
            chosen = self._name_parser_map[name]  # checked by `_check_value`
            fill = self._fillers.pop(name, None)
            if fill is not None:
                fill(chosen)
            root = self.root or parser
            if isinstance(root, RnxArgumentParser) and isinstance(chosen, RnxArgumentParser):
                root.chosen = chosen
                chosen.chosen = chosen
                for action in chosen._actions:  # nested groups report to the same root
                    if isinstance(action, LazySubParsersAction):
                        action.root = root
        super().__call__(parser, namespace, values, option_string)


def add_lazy_subparsers(parser: argparse.ArgumentParser, metavar: str) -> LazySubParsersAction:
    """A group of commands; the group alone (`rnx`, `rnx job`) prints its help."""
    action = parser.add_subparsers(metavar=metavar, action=LazySubParsersAction)
    assert isinstance(action, LazySubParsersAction)
    parser.set_defaults(handler=_HelpPrinter(parser))
    return action


class _HelpPrinter:
    """The handler of a group given no command: its help, on stdout, exit 0."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser

    def __call__(self, ctx: Any) -> int:
        ctx.out.write(self._parser.format_help())
        return 0
