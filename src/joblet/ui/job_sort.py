"""The jobs page's sorting: which columns sort, in what order, and the
links of its headers. Pure functions on the API's Job messages.

ListJobPages has no sort order of its own (its cursor walks creation order),
so a sorted screen is cut from every job that matches the filters, sorted
here, keeping only the jobs up to the screen's end as the pages go by;
without a sort the page keeps the cursor's cheaper walk.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joblet.ui.views import ENDED, parse_time

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Id"), ("name", "Name"), ("node", "Node"), ("status", "Status"),
    ("command", "Command"), ("start", "Start"), ("duration", "Duration"), ("exit", "Exit"),
)  # fmt: skip
ORDERS = ("asc", "desc")


@dataclass(frozen=True)
class Sort:
    column: str  # one of COLUMNS' keys; "" = the API's own order
    descending: bool = False


def parse_sort(query: Mapping[str, str]) -> Sort:
    """The URL's sort; an unknown column or order is ignored (no sort)."""
    column = query.get("sort", "")
    if column not in dict(COLUMNS):
        return Sort("")
    return Sort(column, query.get("order", "asc") == "desc")


def _seconds(job: Any, now: datetime) -> float:
    began, ended = parse_time(job.startTime), parse_time(job.endTime) or now
    return (ended - began).total_seconds() if began else -1.0


def _keys(now: datetime) -> dict[str, Callable[[Any], Any]]:
    return {
        "id": lambda j: j.uuid,
        "name": lambda j: j.name.lower(),
        "node": lambda j: j.nodeId,
        "status": lambda j: j.status,
        "command": lambda j: (j.command, list(j.args)),
        "start": lambda j: j.startTime,
        "duration": lambda j: _seconds(j, now),
        # jobs still running have no exit code: after every ended one
        "exit": lambda j: (0, j.exitCode) if j.status in ENDED else (1, 0),
    }


def first_jobs(kept: Iterable[Any], more: Iterable[Any], sort: Sort, now: datetime,
               count: int) -> list[Any]:  # fmt: skip
    """The first `count` of `kept` and `more` in the sort's order (the id
    breaks ties, and turns round with the order). Called once per page of the
    listing with what it kept before: only `count` jobs stay in memory, not
    every job that matches."""
    key = _keys(now)[sort.column]
    pick = heapq.nlargest if sort.descending else heapq.nsmallest
    return pick(count, itertools.chain(kept, more), key=lambda j: (key(j), j.uuid))


def sort_jobs(jobs: Sequence[Any], sort: Sort, now: datetime) -> list[Any]:
    """`jobs` in the sort's order; without one, as they are."""
    if not sort.column:
        return list(jobs)
    return first_jobs((), jobs, sort, now, len(jobs))


@dataclass(frozen=True)
class Header:
    key: str
    label: str
    arrow: str  # "▲", "▼" or "" (the column the page is sorted by)
    order: str  # what a click on it asks for


def headers(sort: Sort) -> list[Header]:
    """Each column's header: clicking the sorted one turns its order round."""
    out = []
    for key, label in COLUMNS:
        here = key == sort.column
        arrow = ("▼" if sort.descending else "▲") if here else ""
        order = "asc" if here and sort.descending else "desc" if here else "asc"
        out.append(Header(key, label, arrow, order))
    return out


def page_number(query: Mapping[str, str]) -> int:
    text = query.get("page", "")
    return max(int(text), 0) if text.isdigit() and len(text) < 7 else 0
