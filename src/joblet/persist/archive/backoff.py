"""Waits between retries while the object store fails (pure).

"Full jitter": a uniform draw up to an exponentially growing cap, so that
many nodes that lost the same endpoint do not come back in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BASE_S = 0.5


@dataclass
class Backoff:
    max_s: float
    base_s: float = BASE_S
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self) -> float:
        return float(min(self.max_s, self.base_s * 2 ** min(self.failures, 30)))

    def next_wait(self) -> float:
        """Count one more failure; the wait before the next try."""
        self.failures += 1
        return self.rng.uniform(0, self.ceiling())

    def reset(self) -> None:
        self.failures = 0
