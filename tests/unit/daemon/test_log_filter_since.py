"""GetJobLogsReq.since: every accepted value fits the int64 nanoseconds the
history query carries (a fuzzed duration once overflowed it: INTERNAL)."""

from __future__ import annotations

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.daemon.job_service import log_filter_from
from joblet.errors import InvalidArgument

NOW = 1_800_000_000.0
INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("", 0),
        ("10s", int((NOW - 10) * 1e9)),
        ("99999999999999999999999", 0),  # longer ago than the epoch: the whole log
        ("0001-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59Z", None),  # past int64's nanoseconds: its end
    ],
)
def test_since_fits_int64_nanoseconds(since: str, expected: int | None) -> None:
    got = log_filter_from(pb.GetJobLogsReq(uuid="x", since=since), NOW).since_ns
    assert 0 <= got <= INT64_MAX
    if expected is not None:
        assert got == expected


def test_a_bad_since_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="RFC3339"):
        log_filter_from(pb.GetJobLogsReq(uuid="x", since="yesterday"), NOW)
