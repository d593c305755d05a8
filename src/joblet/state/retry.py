"""Backend writes with a per-attempt timeout and bounded, backed-off retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from joblet.state.backends.base import StateBackendError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WritePolicy:
    timeout_s: float = 5.0
    retries: int = 3  # attempts after the first
    backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        return min(self.max_backoff_s, self.backoff_s * 2.0**attempt)


async def write_with_retry(
    op: Callable[[], Awaitable[None]], policy: WritePolicy, what: str
) -> None:
    """Run `op()` until it succeeds; StateBackendError after the last attempt fails."""
    attempts = policy.retries + 1
    for attempt in range(attempts):
        try:
            async with asyncio.timeout(policy.timeout_s):
                await op()
            return
        except (StateBackendError, TimeoutError) as exc:
            reason = str(exc) or f"timed out after {policy.timeout_s:g}s"
            if attempt + 1 == attempts:
                raise StateBackendError(f"{what} failed {attempts} times: {reason}") from exc
            delay = policy.delay(attempt)
            log.warning(
                "state: %s failed (attempt %d of %d): %s; retrying in %.2fs",
                what,
                attempt + 1,
                attempts,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
