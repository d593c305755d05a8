"""RAM only: for tests and for a daemon that wants no history across restarts."""

from __future__ import annotations

from joblet.state.backends.base import expiry, is_expired


class MemoryBackend:
    """A dict. Shipped as the state fake too (joblet.testing.state)."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[bytes, float | None]] = {}
        self.closed = False

    async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None:
        self._records[job_id] = (bytes(record), expiry(ttl_s))

    async def delete(self, job_id: str) -> None:
        self._records.pop(job_id, None)

    async def get(self, job_id: str) -> bytes | None:
        entry = self._records.get(job_id)
        if entry is None or is_expired(entry[1]):
            return None
        return entry[0]

    async def list_all(self) -> list[tuple[str, bytes]]:
        return [
            (job_id, record)
            for job_id, (record, expires_at) in self._records.items()
            if not is_expired(expires_at)
        ]

    async def close(self) -> None:
        self.closed = True
