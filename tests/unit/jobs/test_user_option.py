from __future__ import annotations

import pytest

from joblet.errors import InvalidArgument
from joblet.jobs.validation import check_user


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("  ", None),
        ("root", (0, 0)),
        ("0", (0, 0)),
        ("1000", (1000, 1000)),
        ("1000:2000", (1000, 2000)),
        ("nobody", (65534, 65534)),
    ],
)
def test_accepted(text: str, expected: tuple[int, int] | None) -> None:
    assert check_user(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("no-such-user-xyz", "not known"),
        ("1000:staff", "numeric GID"),
        ("4294967295", "at most"),
        ("a\0b", "NUL"),
    ],
)
def test_refused(text: str, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        check_user(text)
