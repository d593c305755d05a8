"""Earlier lines of a job's output for the log pane, which shows only the
last 10,000: pure logic, no I/O.

GetJobLogs has no byte or line range, only `tail` (the last N lines so far).
The pane knows its oldest line by its number in the UI's feed, and the feed
knows how many lines follow it; asking for that many plus the lines wanted
(plus some slack) gives the wanted lines first. A running job may have
printed more than the feed has seen by the time the daemon answers: the
answer's end is matched against the feed's last lines to find how many, so
what comes back joins the pane's oldest line with no gap or duplicate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SLACK = 1_000  # lines a running job may print between our snapshot and the answer
MATCH = 50  # of the feed's last lines, matched against the answer's end
MAX_WANT = 10_000


@dataclass
class LineCollector:
    """The first `head` and last `tail` whole lines of a byte stream, and how
    many whole lines it had (a last unfinished line is left out)."""

    head_size: int
    tail_size: int
    head: list[bytes] = field(default_factory=list)
    tail: deque[bytes] = field(default_factory=deque)
    count: int = 0
    _partial: bytes = b""

    def feed(self, chunk: bytes) -> None:
        pieces = (self._partial + chunk).split(b"\n")
        self._partial = pieces.pop()
        for line in pieces:
            self.count += 1
            if len(self.head) < self.head_size:
                self.head.append(line)
            self.tail.append(line)
            if len(self.tail) > self.tail_size:
                self.tail.popleft()


@dataclass(frozen=True)
class Earlier:
    lines: list[bytes]
    first: int  # the feed's number of lines[0] (negative: before the feed began)
    at_start: bool  # nothing comes before lines[0]


@dataclass(frozen=True)
class Ask:
    """What the pane asks for, with the feed's state when it asked."""

    before: int  # the feed's number of the pane's oldest line
    want: int  # lines before it
    feed_lines: int  # whole lines the feed had
    known: list[bytes]  # its last lines (up to MATCH)

    @property
    def ahead(self) -> int:
        """The pane's lines from its oldest to the feed's last."""
        return max(self.feed_lines - self.before, 0)

    @property
    def tail(self) -> int:
        """How many last lines to ask GetJobLogs for: the lines wanted, those
        up to the feed's last whole line, and the slack."""
        return self.ahead + self.want + SLACK


def align(answer: LineCollector, ask: Ask) -> Earlier | None:
    """The lines `ask` wants from the answer of a `tail=ask.tail` call; None
    when the answer's end does not match the feed's last lines (the log is
    not the one the feed shows)."""
    tail, known = list(answer.tail), ask.known
    for extra in range(0, SLACK + 1):  # lines printed after the feed's snapshot
        end = len(tail) - extra
        if end - len(known) < 0 or answer.count - extra < ask.ahead:
            return None
        if tail[end - len(known) : end] == known:
            stop = answer.count - extra - ask.ahead  # the answer's index of line `before`
            start = max(stop - ask.want, 0)
            at_start = start == 0 and answer.count < ask.tail
            return Earlier(answer.head[start:stop], ask.before - (stop - start), at_start)
    return None
