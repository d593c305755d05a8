from __future__ import annotations

import asyncio

from joblet.runtimes.events import (
    MAX_QUEUED_LOGS,
    STEPS,
    ByteThrottle,
    InstallRun,
    LogData,
    LogTail,
    Outcome,
    Progress,
    progress,
    step_number,
)


def test_steps_in_order() -> None:
    assert STEPS == ("validate", "fetch", "unpack", "build", "verify", "install")
    assert [step_number(s) for s in STEPS] == [1, 2, 3, 4, 5, 6]
    assert progress("build", "job x") == Progress(4, "build: job x")


def test_log_tail_keeps_the_last_lines() -> None:
    tail = LogTail()
    for i in range(100):
        tail.add(f"line {i}\n".encode())
    assert tail.lines() == [f"line {i}" for i in range(80, 100)]
    big = LogTail()
    big.add(b"x" * 200_000 + b"\nlast\n")
    assert big.lines(1) == ["last"]


def test_events_reach_the_listener_until_the_outcome() -> None:
    async def scenario() -> list[object]:
        run = InstallRun("tools")
        run.emit(progress("validate", "ok"))
        run.emit_log(b"building\n")
        run.emit(Outcome(True, "tools", "installed"))
        return [event async for event in run.events()]

    events = asyncio.run(scenario())
    assert events == [
        Progress(1, "validate: ok"),
        LogData(b"building\n"),
        Outcome(True, "tools", "installed"),
    ]


def test_a_listener_that_left_does_not_stop_the_run() -> None:
    async def scenario() -> Outcome:
        run = InstallRun("tools")
        stream = run.events()
        run.emit(progress("validate", "ok"))
        await anext(stream)
        await stream.aclose()  # the client hung up
        run.emit_log(b"more output nobody reads\n")
        run.emit(Outcome(False, "tools", "build failed"))
        return await run.wait()

    assert asyncio.run(scenario()).message == "build failed"


def test_a_reader_far_behind_gets_a_note_instead_of_unbounded_output() -> None:
    async def scenario() -> list[object]:
        run = InstallRun("tools")
        stream = run.events()
        for _ in range(MAX_QUEUED_LOGS + 10):
            run.emit_log(b"x" * 100)
        first = [await anext(stream) for _ in range(MAX_QUEUED_LOGS)]
        run.emit_log(b"after\n")
        run.emit(Outcome(True, "tools", "ok"))
        rest = [event async for event in stream]
        return first + rest

    events = asyncio.run(scenario())
    assert len(events) == MAX_QUEUED_LOGS + 3
    assert events[MAX_QUEUED_LOGS] == LogData(
        b"[1000 bytes of build output not sent: the reader was behind]\n"
    )
    assert events[-2] == LogData(b"after\n")


def test_byte_progress_is_throttled_to_about_a_hundred_updates() -> None:
    throttle = ByteThrottle(min_interval_s=0.25, min_fraction=0.01)
    total = 100 * 1024 * 1024
    sent = [done for done in range(0, total + 1, 64 * 1024) if throttle.due(done, total, 0.0)]
    assert sent[0] == 0 and sent[-1] == total
    assert 90 <= len(sent) <= 110
    slow = ByteThrottle(min_interval_s=0.25)
    assert slow.due(0, 0, 0.0)  # unknown total: the first, then by time or each MiB
    assert not slow.due(1000, 0, 0.1)
    assert slow.due(2000, 0, 0.4)
    assert slow.due(2000 + (1 << 20), 0, 0.41)
