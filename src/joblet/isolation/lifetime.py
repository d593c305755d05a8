"""When the launcher exits: pure bookkeeping on the launcher's monotonic clock.

Jobs always keep it. Without a job it exits at once when it was asked to (a
daemon stopping cleanly) unless a client came since, or once it has had no
client for `idle_exit_s` (its daemon died and did not come back; 0 = never).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifetime:
    idle_exit_s: float
    idle_since: float  # when the last client left or the last job ended
    exit_asked: bool = False

    def ask_exit(self) -> None:
        self.exit_asked = True

    def client_came(self) -> None:
        """A new daemon (or one starting, pinging) cancels an exit asked for."""
        self.exit_asked = False

    def quiet_from(self, now: float) -> None:
        """A client left, or a job ended: the idle time counts from `now`."""
        self.idle_since = now

    def deadline(self, has_jobs: bool, has_clients: bool) -> float | None:
        """When it exits if nothing happens (None: not before an event)."""
        if has_jobs:
            return None
        if self.exit_asked:
            return float("-inf")
        if has_clients or not self.idle_exit_s:
            return None
        return self.idle_since + self.idle_exit_s

    def should_exit(self, has_jobs: bool, has_clients: bool, now: float) -> bool:
        deadline = self.deadline(has_jobs, has_clients)
        return deadline is not None and now >= deadline
