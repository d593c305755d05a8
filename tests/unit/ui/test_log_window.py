"""Earlier lines for the log pane: the answer of a `tail` call joined to the
pane's oldest line with no gap and no duplicate, a running job's newer lines
recognised at its end."""

from __future__ import annotations

from joblet.ui.feeds import Tail
from joblet.ui.log_window import MATCH, SLACK, Ask, Earlier, LineCollector, align

LOG = [f"line {n}".encode() for n in range(1, 30_001)]


def tail_answer(log: list[bytes], asked: int) -> LineCollector:
    """What GetJobLogs(tail=asked) streams, in uneven chunks."""
    text = b"".join(line + b"\n" for line in log[-asked:])
    answer = LineCollector(head_size=2_000 + SLACK, tail_size=MATCH + SLACK)
    for start in range(0, len(text), 7_777):
        answer.feed(text[start : start + 7_777])
    return answer


def feed_of(log: list[bytes], tail_lines: int) -> Tail:
    """The UI's feed: started with tail=10,000 when the log had `log`."""
    tail = Tail(max_lines=10_000)
    tail.append(b"".join(line + b"\n" for line in log[-tail_lines:]))
    return tail


def fetch(log: list[bytes], feed: Tail, before: int, want: int) -> Earlier | None:
    ask = Ask(before, want, feed.lines, feed.last_lines(MATCH))
    return align(tail_answer(log, ask.tail), ask)


def test_the_collector_counts_whole_lines_and_keeps_both_ends() -> None:
    got = LineCollector(head_size=2, tail_size=2)
    for chunk in (b"a\nb", b"\nc\n", b"d\ne\nunfinished"):
        got.feed(chunk)
    assert (got.head, list(got.tail), got.count) == ([b"a", b"b"], [b"d", b"e"], 5)


def test_the_lines_before_the_oldest_shown_come_back_exactly() -> None:
    feed = feed_of(LOG, 10_000)  # feed line 0 is "line 20001"
    before, want = 0, 2_000
    found = fetch(LOG, feed, before, want)
    assert found is not None and not found.at_start
    assert found.first == -2_000
    assert found.lines == LOG[18_000:20_000]
    # and again from there, back to the very start
    before = found.first
    for _ in range(20):
        found = fetch(LOG, feed, before, want)
        assert found is not None
        assert found.lines == LOG[20_000 + found.first : 20_000 + before]
        before = found.first
        if found.at_start:
            break
    assert before == -20_000 and found.at_start


def test_lines_a_running_job_printed_meanwhile_are_recognised() -> None:
    feed = feed_of(LOG[:25_000], 10_000)  # the feed saw up to "line 25000"
    # the daemon answers after 400 more lines
    found = fetch(LOG[:25_400], feed, -3, 100)
    assert found is not None and found.first == -103
    assert found.lines == LOG[15_000 - 103 : 15_000 - 3]


def test_an_answer_that_does_not_end_like_the_feed_is_refused() -> None:
    feed = feed_of(LOG, 10_000)
    other = [b"other " + line for line in LOG]
    assert fetch(other, feed, 0, 10) is None


def test_the_feed_numbers_lines_from_its_start_as_it_drops_old_ones() -> None:
    tail = Tail(max_lines=3)
    tail.append(b"1\n2\n3\n")
    tail.append(b"4\n5\n6")
    assert (tail.lines, tail.base_line) == (5, 2)
    assert tail.line_at(tail.base) == 2 and tail.line_at(tail.end) == 5
    assert tail.last_lines(2) == [b"4", b"5"]
    assert tail.last_lines(9) == [b"4", b"5"]  # "3" may have been cut
