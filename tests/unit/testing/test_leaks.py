"""The pure halves of the leak counts: nftables set elements, flatness, the
return to idle."""

from __future__ import annotations

import json

from joblet.testing import leaks


def test_set_elements_are_summed_over_every_set() -> None:
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"set": {"name": "jobs", "elem": ["10.1.0.2", "10.1.0.3"]}},
            {"set": {"name": "empty"}},
            {"set": {"name": "ports", "elem": [80]}},
        ]
    }
    assert leaks.nft_set_elements(json.dumps(listing)) == 3
    assert leaks.nft_set_elements("") == 0


def test_a_series_that_grows_after_warm_up_is_named() -> None:
    series = [
        {"daemon rss KiB": 60_000, "cgroups": 0, "launcher fds": 15},
        {"daemon rss KiB": 70_000, "cgroups": 0, "launcher fds": 19},
        {"daemon rss KiB": 71_000, "cgroups": 0, "launcher fds": 15},
        {"daemon rss KiB": 80_000, "cgroups": 3, "launcher fds": 19},
    ]
    assert leaks.flat(series, 1) == ["daemon rss KiB: 70000 -> 80000", "cgroups: 0 -> 3"]
    assert leaks.flat(series[:3], 1) == []
    assert leaks.flat(series, 9) == []  # not warmed up yet: nothing to say


def test_back_to_idle_allows_warm_caches_only() -> None:
    idle = {"daemon rss KiB": 60_000, "daemon fds": 20, "mounts": 4, "files under root": 31}
    end = {"daemon rss KiB": 70_000, "daemon fds": 24, "mounts": 4, "files under root": 32}
    assert leaks.back_to_idle(idle, end) == ["files under root: idle 31, end 32"]
    end |= {"daemon rss KiB": 80_000, "files under root": 31}
    assert leaks.back_to_idle(idle, end) == ["daemon rss KiB: idle 60000, end 80000"]
