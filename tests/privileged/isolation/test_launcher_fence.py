"""The placement fence kept by the launcher: jobs it was told may run again
elsewhere are killed at the deadline unless the daemon renews it first (it
hung, or is gone); others are left alone, and the exit says it was the fence."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from isolation_harness import UNTIL_RELEASED, Harness, release, sh

pytestmark = pytest.mark.privileged


async def test_a_deadline_not_renewed_kills_the_listed_jobs_only(launcher: Harness) -> None:
    listed, other = launcher.spec(sh(UNTIL_RELEASED)), launcher.spec(sh(UNTIL_RELEASED))
    await launcher.start(listed)
    await launcher.start(other)
    told = time.monotonic()
    await launcher.client.fence(told + 0.3, [listed.job_id, "no-such-job"])
    ended = await launcher.wait(listed, timeout=10)
    assert time.monotonic() - told >= 0.3
    assert ended.exit.fenced and ended.exit.signal == signal.SIGKILL
    await asyncio.sleep(0.2)
    assert not launcher.exits[other.job_id].done()  # not listed: still running
    release(other)
    assert not (await launcher.wait(other)).exit.fenced


async def test_a_renewed_deadline_or_an_empty_list_keeps_the_job(launcher: Harness) -> None:
    spec = launcher.spec(sh(UNTIL_RELEASED))
    await launcher.start(spec)
    await launcher.client.fence(time.monotonic() + 0.3, [spec.job_id])
    await asyncio.sleep(0.1)
    await launcher.client.fence(time.monotonic() + 0.6, [spec.job_id])  # renewed in time
    await asyncio.sleep(0.3)
    await launcher.client.fence(time.monotonic() + 0.2, [])  # disarmed
    await asyncio.sleep(0.8)
    assert not launcher.exits[spec.job_id].done()
    release(spec)
    result = await launcher.wait(spec)
    assert result.exit.exit_code == 0 and not result.exit.fenced
