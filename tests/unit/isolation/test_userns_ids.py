"""The id map of the jobs' user namespace: pure arithmetic."""

from __future__ import annotations

import pytest

from joblet.isolation.userns import BASE_ID, ID_COUNT, IdMap


def test_the_map_file_maps_the_whole_range_in_one_line() -> None:
    assert IdMap().map_text() == f"0 {BASE_ID} {ID_COUNT}\n"
    assert IdMap(200000, 10).map_text() == "0 200000 10\n"


def test_host_ids_are_shifted_and_ids_outside_are_refused() -> None:
    ids = IdMap(200000, 65536)
    assert (ids.host_id(0), ids.host_id(1000), ids.host_id(65535)) == (200000, 201000, 265535)
    for inner in (-1, 65536, 1 << 31):
        with pytest.raises(ValueError, match="outside the job's user namespace"):
            ids.host_id(inner)


def test_the_default_range_is_clear_of_subuid_ranges_and_signed_ints() -> None:
    assert BASE_ID >= 100000 + 65536 * 1000
    assert BASE_ID + ID_COUNT < 1 << 31
