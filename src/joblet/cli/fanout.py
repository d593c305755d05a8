"""Asking several nodes the same thing at once, each within its own timeout.

One thread per node (a CLI asks a handful; grpc's synchronous calls block).
A node that has not answered by the deadline is given up on: its channel is
closed, which cancels its calls, and it is reported as not answering; the
others' answers are used as they are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from joblet.cli.node_select import NodeAnswer, failed
from joblet.client.errors import EXIT_FAILURE, CliError

if TYPE_CHECKING:
    import grpc

    from joblet.cli.context import CommandContext
    from joblet.client.config import NodeConfig

_T = TypeVar("_T")
Work = Callable[["grpc.Channel", str], _T]  # (channel, address) -> the node's answer


class _Attempt:
    """One node's call: filled in by its thread, given up on by the caller."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.address = name
        self.lock = threading.Lock()
        self.channel: grpc.Channel | None = None
        self.abandoned = False
        self.answer: NodeAnswer[object] | None = None

    def hold(self, channel: grpc.Channel) -> bool:
        """Keep `channel` for closing on give-up; False once given up on."""
        with self.lock:
            if self.abandoned:
                return False
            self.channel = channel
            return True

    def give_up(self) -> None:
        with self.lock:
            self.abandoned = True
            channel, self.channel = self.channel, None
        if channel is not None:
            channel.close()  # cancels the calls in flight: the thread ends soon


def ask_nodes(ctx: CommandContext, names: Sequence[str], work: Work[_T]) -> list[NodeAnswer[_T]]:
    """`work` on every node of `names` in parallel; the answers in that order."""
    config = ctx.load_config()
    timeout_s = ctx.node_timeout_s(config)
    attempts = [_Attempt(name) for name in names]
    threads = []
    for attempt in attempts:
        target = _runner(ctx, attempt, config.node, work, timeout_s)
        thread = threading.Thread(target=target, name=f"node-{attempt.name}", daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return [_answer(attempt, timeout_s) for attempt in attempts]


def _answer(attempt: _Attempt, timeout_s: float) -> NodeAnswer[_T]:
    with attempt.lock:
        answer = attempt.answer
    if answer is not None:
        return answer  # type: ignore[return-value]
    attempt.give_up()
    return _late(attempt, timeout_s)


def _late(attempt: _Attempt, timeout_s: float) -> NodeAnswer[_T]:
    return NodeAnswer(
        attempt.name,
        error=f"joblet at {attempt.address} did not answer within {timeout_s:g}s"
        " (--node-timeout sets how long to wait)",
        code="DEADLINE_EXCEEDED",
    )


def _runner(
    ctx: CommandContext,
    attempt: _Attempt,
    node_of: Callable[[str], NodeConfig],
    work: Work[_T],
    timeout_s: float,
) -> Callable[[], None]:
    def run() -> None:
        try:
            node = node_of(attempt.name)
            attempt.address = node.address
            channel = ctx.open_channel(node, timeout_s)
            if not attempt.hold(channel):
                channel.close()
                return
            try:
                answer: NodeAnswer[object] = NodeAnswer(attempt.name, work(channel, node.address))
            finally:
                channel.close()
        except CliError as exc:
            answer = NodeAnswer(attempt.name, error=exc.message, code=exc.code)
            if exc.code == "DEADLINE_EXCEEDED":  # connecting took all of its time
                answer = _late(attempt, timeout_s)
        except Exception as exc:  # one node's surprise must not hide the others' answers
            answer = NodeAnswer(attempt.name, error=f"unexpected {type(exc).__name__}: {exc}")
        with attempt.lock:
            attempt.answer = answer

    return run


def report_failures(ctx: CommandContext, answers: Sequence[NodeAnswer[_T]]) -> int:
    """Each failed node on stderr, named; the exit code (0: none failed)."""
    bad = failed(answers)
    for answer in bad:
        ctx.report_node_error(answer.node, answer.error, answer.code or "FAILED")
    return EXIT_FAILURE if bad else 0
