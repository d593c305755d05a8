"""rnx's command tree as plain data, read from its argparse parser.

Completion scripts, docs/cli.md and the man pages are all generated from this
one walk, so none of them can list a command or flag that rnx does not have.
The parser fills a command's arguments lazily; the walk fills every one.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass, field

from joblet.cli.parser import LazySubParsersAction

# Commands kept out of listings (completion plumbing, not for people).
HIDDEN_PREFIX = "__"


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # e.g. ("-f", "--follow")
    help: str
    metavar: str  # "" for a switch that takes no value
    choices: tuple[str, ...] = ()

    @property
    def takes_value(self) -> bool:
        return bool(self.metavar)


@dataclass(frozen=True)
class Positional:
    name: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("rnx", "job", "run")
    help: str
    description: str
    epilog: str
    usage: str
    aliases: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    positionals: tuple[Positional, ...] = ()
    subcommands: tuple[Command, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def full_name(self) -> str:
        return " ".join(self.path)

    def walk(self) -> list[Command]:
        """This command and every command under it, depth first."""
        found = [self]
        for sub in self.subcommands:
            found.extend(sub.walk())
        return found

    def find(self, *words: str) -> Command:
        """The command at `words` below this one (names or aliases)."""
        here = self
        for word in words:
            here = next(s for s in here.subcommands if word in (s.name, *s.aliases))
        return here


def command_tree(parser: argparse.ArgumentParser | None = None) -> Command:
    """The tree of `parser` (default: rnx's own)."""
    if parser is None:
        from joblet.cli.main import build_parser

        parser = build_parser()
    return _command(parser, ("rnx",), "", ())


def _command(
    parser: argparse.ArgumentParser, path: tuple[str, ...], help_text: str, aliases: tuple[str, ...]
) -> Command:
    flags: list[Flag] = []
    positionals: list[Positional] = []
    subcommands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subcommands.extend(_subcommands(action, path))
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            flags.append(_flag(action))
        else:
            positionals.append(
                Positional(_metavar(action), _help(action), tuple(map(str, action.choices or ())))
            )
    return Command(
        path=path,
        help=help_text,
        description=parser.description or "",
        epilog=parser.epilog or "",
        usage=" ".join(parser.format_usage().split()).removeprefix("usage: "),
        aliases=aliases,
        flags=tuple(flags),
        positionals=tuple(positionals),
        subcommands=tuple(subcommands),
    )


def _subcommands(action: argparse._SubParsersAction, path: tuple[str, ...]) -> list[Command]:  # type: ignore[type-arg]
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    by_parser: dict[int, list[str]] = {}
    parsers: dict[int, argparse.ArgumentParser] = {}
    for name, sub in action.choices.items():  # a name, then its aliases, in order
        by_parser.setdefault(id(sub), []).append(name)
        parsers[id(sub)] = sub
    found = []
    for key, names in by_parser.items():
        sub = parsers[key]
        if isinstance(action, LazySubParsersAction):
            fill = action._fillers.pop(names[0], None)
            for alias in names[1:]:
                action._fillers.pop(alias, None)
            if fill is not None:
                fill(sub)  # type: ignore[arg-type]
        found.append(_command(sub, (*path, names[0]), helps.get(names[0], ""), tuple(names[1:])))
    return found


def _flag(action: argparse.Action) -> Flag:
    takes_value = action.nargs != 0
    metavar = _metavar(action) if takes_value else ""
    choices = tuple(map(str, action.choices or ()))
    return Flag(tuple(action.option_strings), _help(action), metavar, choices)


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, str):
        return action.metavar
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    if action.choices:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's %(default)s and friends
        params = {**vars(action), "prog": "rnx"}
        with contextlib.suppress(KeyError, TypeError, ValueError):
            text = text % params
    return " ".join(text.split())


def visible(commands: tuple[Command, ...] | list[Command]) -> list[Command]:
    return [c for c in commands if not c.name.startswith(HIDDEN_PREFIX)]
