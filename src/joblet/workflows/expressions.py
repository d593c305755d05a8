"""Requirement expressions: parsing, three-valued evaluation, rendering.

A requirement says which final statuses of other jobs let a job start:
`load=COMPLETED`, `t-a!=FAILED`, `x IN (FAILED, STOPPED)`, `x NOT IN (...)`,
combined with NOT, AND, OR (binding in that order) and parentheses. FINISHED
stands for any final status, like Slurm's `afterany`.

Evaluation is three-valued: an atom is unknown (None) until its job has a
final status, so a requirement is met the moment it is true and impossible
the moment it is false, without waiting for every job it names. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

FINAL = ("COMPLETED", "FAILED", "STOPPED", "CANCELED")
FINAL_SET = frozenset(FINAL)
STATUS_WORDS = (*FINAL, "FINISHED")
MAX_EXPRESSION_CHARS = 4096
MAX_DEPTH = 64  # nesting of parentheses and NOTs: bounds the recursion


class ExpressionError(ValueError):
    """A requirement that does not parse; `column` counts from 1."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


@dataclass(frozen=True)
class Atom:
    """`job` has one of `statuses` (or, negated, none of them)."""

    job: str
    statuses: tuple[str, ...]  # as written, FINISHED kept for rendering
    negated: bool = False
    column: int = 1

    def matches(self, status: str) -> bool:
        hit = status in self.statuses or "FINISHED" in self.statuses
        return hit != self.negated


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Atom | Not | And | Or
# One item of a job's `requires`: `{job: S}`, `{job: [S, ...]}` and strings all
# become expressions; a job starts when all its items hold.
Requirement = Expr


def atom(job: str, statuses: tuple[str, ...] | str, column: int = 1) -> Atom:
    """The expression of a `{job: STATUS}` or `{job: [STATUS, ...]}` item."""
    given = (statuses,) if isinstance(statuses, str) else statuses
    for status in given:
        check_status(status, column)
    return Atom(job, given, False, column)


def check_status(word: str, column: int) -> None:
    if word not in STATUS_WORDS:
        raise ExpressionError(f'unknown status "{word}"{_suggest(word)}', column)


def _suggest(word: str) -> str:
    close = difflib.get_close_matches(word.upper(), STATUS_WORDS, n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return f"{hint}: use {', '.join(FINAL)} or FINISHED"


def evaluate(expr: Expr, statuses: Mapping[str, str]) -> bool | None:
    """True or False once decided, None while it depends on a job not yet final."""
    if isinstance(expr, Atom):
        status = statuses.get(expr.job)
        return None if status not in FINAL_SET else expr.matches(status)
    if isinstance(expr, Not):
        inner = evaluate(expr.operand, statuses)
        return None if inner is None else not inner
    stop = isinstance(expr, Or)  # the value that decides: True for OR, False for AND
    unknown = False
    for operand in expr.operands:
        value = evaluate(operand, statuses)
        if value is stop:
            return stop
        unknown = unknown or value is None
    return None if unknown else not stop


def jobs_of(expr: Expr) -> Iterator[Atom]:
    """The atoms of `expr`, left to right."""
    if isinstance(expr, Atom):
        yield expr
    elif isinstance(expr, Not):
        yield from jobs_of(expr.operand)
    else:
        for operand in expr.operands:
            yield from jobs_of(operand)


def render(expr: Expr) -> str:
    """Canonical text that parses back to the same expression."""
    if isinstance(expr, Atom):
        return _render_atom(expr)
    if isinstance(expr, Not):
        return f"NOT {_wrap(expr.operand, Not)}"
    word = " AND " if isinstance(expr, And) else " OR "
    return word.join(_wrap(operand, type(expr)) for operand in expr.operands)


_BINDING = {Or: 0, And: 1, Not: 2, Atom: 3}


def _wrap(expr: Expr, parent: type) -> str:
    text = render(expr)
    # Under NOT only a weaker operator needs parentheses; under AND and OR an
    # equal one does too, so that grouping written by the user survives.
    weaker = _BINDING[type(expr)] < _BINDING[parent]
    equal = _BINDING[type(expr)] == _BINDING[parent] and parent is not Not
    return f"({text})" if weaker or equal else text


def _render_atom(expr: Atom) -> str:
    if len(expr.statuses) == 1:
        return f"{expr.job}{'!=' if expr.negated else '='}{expr.statuses[0]}"
    listed = ", ".join(expr.statuses)
    return f"{expr.job} {'NOT IN' if expr.negated else 'IN'} ({listed})"


# Job names as validation allows them; statuses and keywords are words of the same shape.
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)|(?P<op>!=|[=(),]))")
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN"})


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "op", "AND", "OR", "NOT", "IN", "end"
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos:].strip():
                column = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
                raise ExpressionError(f"unexpected character {text[column - 1]!r}", column)
            break
        group = "name" if match.group("name") else "op"
        word = match.group(group)
        kind = word if group == "name" and word in _KEYWORDS else group
        found.append(_Token(kind, word, match.start(group) + 1))
        pos = match.end()
    found.append(_Token("end", "", len(text) + 1))
    return found


def parse_expression(text: str) -> Expr:
    """The expression `text` holds, or ExpressionError with the column of the fault."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters", 1)
    if not text.strip():
        raise ExpressionError("empty expression: use JOB=STATUS", 1)
    parser = _Parser(_tokens(text))
    expr = parser.disjunction(0)
    parser.expect("end", "AND, OR or the end")
    return expr


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: str, wanted: str, text: str | None = None) -> _Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            got = "the end" if token.kind == "end" else repr(token.text)
            raise ExpressionError(f"expected {wanted}, got {got}", token.column)
        return self.take()

    def disjunction(self, depth: int) -> Expr:
        operands = [self.conjunction(depth)]
        while self.peek().kind == "OR":
            self.take()
            operands.append(self.conjunction(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self, depth: int) -> Expr:
        operands = [self.negation(depth)]
        while self.peek().kind == "AND":
            self.take()
            operands.append(self.negation(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def negation(self, depth: int) -> Expr:
        token = self.peek()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels", token.column)
        if token.kind == "NOT":
            self.take()
            return Not(self.negation(depth + 1))
        if token.kind == "op" and token.text == "(":
            self.take()
            inner = self.disjunction(depth + 1)
            self.expect("op", "')'", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Atom:
        job = self.expect("name", "a job name, NOT or '('")
        token = self.take()
        if token.kind == "op" and token.text in ("=", "!="):
            status = self.expect("name", "a status")
            check_status(status.text, status.column)
            return Atom(job.text, (status.text,), token.text == "!=", job.column)
        negated = token.kind == "NOT"
        if negated:
            token = self.take()
        if token.kind != "IN":
            got = "the end" if token.kind == "end" else repr(token.text)
            raise ExpressionError(f"expected '=', '!=', IN or NOT IN, got {got}", token.column)
        return Atom(job.text, self.status_list(), negated, job.column)

    def status_list(self) -> tuple[str, ...]:
        self.expect("op", "'(' after IN", "(")
        statuses: list[str] = []
        while True:
            status = self.expect("name", "a status")
            check_status(status.text, status.column)
            statuses.append(status.text)
            if self.peek().text != ",":
                break
            self.take()
        self.expect("op", "',' or ')'", ")")
        return tuple(statuses)
