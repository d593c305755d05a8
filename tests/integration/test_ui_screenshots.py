"""Each page of the web UI at 1280x800 with fixed data, against committed
baselines: at most 0.5 % of pixels may differ. On a difference the actual
image and a diff (red where) are kept next to the test's tmp dir and named
in the message. `make ui-baselines` writes new baselines (look at each)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .png import compare
from .ui_fixed import JOBS, FixedUi, fixed_ui

pytestmark = [pytest.mark.slow, pytest.mark.integration]
BASELINES = Path(__file__).parent / "ui_baselines"
RENEW = os.environ.get("JOBLET_UI_BASELINES") == "1"
MAX_DIFFERING = 0.005
PAGES = {
    "login": "/login",
    "jobs": "/jobs",
    "job": f"/jobs/{JOBS[1].uuid}",
    "job-metrics": f"/jobs/{JOBS[1].uuid}#metrics",  # scrolled to its charts
    "run": "/run",
    "workflows": "/workflows",
    "workflow": "/workflows/feedface-0000-4000-8000-000000000001",
    "host": "/host",
    "resources": "/resources",
}


@pytest.fixture(scope="module")
def page() -> Iterator[tuple[FixedUi, Any]]:
    if not shutil.which("/usr/bin/chromium"):
        pytest.skip("needs Debian's chromium (scripts/deps.sh installs it)")
    from playwright.sync_api import sync_playwright

    from .test_ui_browser import CHROMIUM, CHROMIUM_ARGS

    with fixed_ui() as ui, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        tab = context.new_page()
        tab.goto(f"{ui.origin}/login#{ui.token('admin')}")
        tab.wait_for_url(re.compile(r"/jobs$"))
        yield ui, tab
        browser.close()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_matches_its_baseline(page: tuple[FixedUi, Any], name: str, tmp_path: Path) -> None:
    ui, tab = page
    if name == "login":
        tab.context.clear_cookies()
    tab.goto(f"{ui.origin}{PAGES[name]}")
    tab.wait_for_load_state("load")
    if name in ("job", "job-metrics"):  # the live pane has its lines and knows the log ended
        tab.wait_for_selector("#log-state[data-ended]", state="attached")
        tab.wait_for_selector("#chart-mem[data-points='40']", state="attached")
        tab.wait_for_selector("#job-summary table", state="attached")
        if name == "job-metrics":  # the charts drew after the jump to them
            tab.locator("#metrics").scroll_into_view_if_needed()
    if name == "host":  # every fixed sample charted, the tables filled
        tab.wait_for_selector("#chart-host-cpu[data-points='30']", state="attached")
        tab.wait_for_selector("#host-disks", state="attached")
    shot = tab.screenshot()
    if name == "login":  # sign in again for the pages after it (a new document:
        tab.goto("about:blank")  # a fragment alone would not load the page again)
        tab.goto(f"{ui.origin}/login#{ui.token('admin')}")
        tab.wait_for_url(re.compile(r"/jobs$"))
    baseline = BASELINES / f"{name}.png"
    if RENEW or not baseline.exists():
        BASELINES.mkdir(exist_ok=True)
        baseline.write_bytes(shot)
        if not RENEW:
            pytest.fail(f"no baseline: wrote {baseline}; look at it and commit it")
        return
    actual, diff = tmp_path / f"{name}-actual.png", tmp_path / f"{name}-diff.png"
    actual.write_bytes(shot)
    share = compare(shot, baseline.read_bytes(), diff)
    assert share <= MAX_DIFFERING, (
        f"{name}: {share:.2%} of pixels differ; actual {actual}, diff {diff}"
    )
