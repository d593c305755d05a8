"""50 browsers following one job's output through the UI: one upstream
GetJobLogs stream for all of them, each gets every line once. (slow: the
default suite's variant is tests/unit/ui/test_feeds.py)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon
from .ui_support import Browser, UiProcess, mint, sse_events, ui_world

pytestmark = [pytest.mark.integration, pytest.mark.privileged, pytest.mark.slow]
FOLLOWERS = 50


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, UiProcess]]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    with ui_world(tmp_path_factory.mktemp("ui-fanout")) as both:
        yield both


def test_fifty_followers_share_one_upstream_stream(world: tuple[RunningDaemon, UiProcess]) -> None:
    daemon, ui = world
    browser = Browser(ui)
    assert browser.sign_in(mint(daemon, "viewer")).status == 303
    script = "sleep 2; for i in $(seq 1 100); do echo line $i; sleep 0.02; done"
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="sh", args=["-c", script])).jobUuid

    def follow(_: int) -> str:
        events = sse_events(ui, f"/jobs/{job}/events", browser.cookie)
        return "".join(data for kind, _, data in events if kind == "log")

    with ThreadPoolExecutor(FOLLOWERS) as pool:
        outputs = list(pool.map(follow, range(FOLLOWERS)))
    expected = "".join(f"line {i}\n" for i in range(1, 101))
    assert outputs == [expected] * FOLLOWERS
    # The feed's key names the job's node too (log:NODE:ID).
    opened = [
        line for line in ui.log_path.read_text().splitlines()
        if "upstream stream opened: log:" in line and line.endswith(f":{job}")
    ]  # fmt: skip
    assert len(opened) == 1, opened
