"""The web UI in a real headless Chromium (Debian's, driven by Playwright)
against a real daemon: sign-in, a viewer's page, the run form, a live log,
stopping a job, and no console error or failed request on any page."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .ui_support import UiProcess, mint, ui_world

pytestmark = [pytest.mark.integration, pytest.mark.privileged]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
TIMEOUT_MS = 20_000
WORKFLOW = """
jobs:
  first: {command: "true"}
  second: {command: "true", requires: [{first: COMPLETED}]}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, UiProcess]]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if not shutil.which(CHROMIUM):
        pytest.skip("needs Debian's chromium (scripts/deps.sh installs it)")
    with ui_world(tmp_path_factory.mktemp("ui-browser")) as both:
        yield both


@pytest.fixture(scope="module")
def browser(world: tuple[RunningDaemon, UiProcess]) -> Iterator[Any]:
    # wait_for_function would evaluate a string, which the pages' CSP forbids:
    # the tests wait through locators instead
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """A fresh browser context (its own cookies) that records every console
    error, page error and failed request."""

    def __init__(self, browser: Any, ui: UiProcess) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.ui = ui
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("requestfailed", self._failed)

    def _failed(self, request: Any) -> None:
        # leaving a page aborts its event stream and what still loads (the
        # server's own errors show as console errors)
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"{request.url}: {request.failure}")

    def sign_in(self, token: str) -> None:
        self.page.goto(f"{self.ui.origin}/login#{token}")
        self.page.wait_for_url(re.compile(r"/(jobs|login)$"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, world: tuple[RunningDaemon, UiProcess]) -> Iterator[Tab]:
    opened = Tab(browser, world[1])
    yield opened
    opened.close()
    assert opened.problems == []


def test_sign_in_with_a_token_and_a_reused_one_is_refused(
    world: tuple[RunningDaemon, UiProcess], tab: Tab, browser: Any
) -> None:
    daemon, ui = world
    token = mint(daemon, "admin")
    tab.sign_in(token)
    assert tab.page.url == f"{ui.origin}/jobs"
    assert "(admin)" in tab.page.inner_text("header")
    assert "#" not in tab.page.url  # the token left the address bar
    other = Tab(browser, ui)
    try:
        other.sign_in(token)
        assert other.page.inner_text("#login-error") == "the login token was already used"
    finally:
        other.close()


def test_a_viewer_sees_no_actions_and_a_forged_post_gets_403(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="echo", args=["seen"])).jobUuid
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.goto(f"{ui.origin}/jobs/{job}")
    tab.page.wait_for_selector("#job-status")
    assert tab.page.locator(".actions").count() == 0
    assert tab.page.locator("nav a[href='/run']").count() == 0
    csrf = tab.page.get_attribute("body", "data-csrf")
    forged = tab.page.request.post(
        f"{ui.origin}/jobs/{job}/delete", form={"csrf": csrf or ""},
        headers={"Origin": ui.origin}, max_redirects=0,
    )  # fmt: skip
    assert forged.status == 403
    assert daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job)).uuid == job


def test_run_a_job_from_the_form_and_see_its_output(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    tab.sign_in(mint(daemon, "admin"))
    tab.page.goto(f"{ui.origin}/run")
    command = "sh -c 'echo hello from the form; printf \"\\033[31msecond\\033[0m line\\n\"'"
    tab.page.fill("#run-command", command)
    tab.page.click("#run-submit")
    tab.page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(tab.page.locator("#log")).to_contain_text("second line", timeout=TIMEOUT_MS)
    assert tab.page.inner_text("#log").splitlines() == ["hello from the form", "second line"]
    assert tab.page.inner_text("#log .ansi-fg1") == "second"  # its ANSI colour, as a class
    tab.page.fill("#log-search", "hello")
    expect(tab.page.locator("#log .hit")).to_have_count(1)
    assert "hello from the form" in tab.page.inner_text("#log .hit")
    status = tab.page.locator("td[data-field=status]")
    expect(status).to_have_text("COMPLETED", timeout=TIMEOUT_MS)


def test_the_log_pane_shows_the_last_lines_and_loads_earlier_ones_on_demand(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="seq", args=["1", "12000"])).jobUuid
    wait_status(daemon.jobs(), job, {"COMPLETED"})
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.goto(f"{ui.origin}/jobs/{job}")
    log = tab.page.locator("#log")
    expect(log).to_contain_text("12000", timeout=TIMEOUT_MS)
    assert log.inner_text().split() == [str(n) for n in range(2001, 12001)]
    tab.page.click("#log-earlier")
    expect(tab.page.locator("#log-earlier")).to_have_text("start of the output")
    assert log.inner_text().split() == [str(n) for n in range(1, 12001)]
    assert tab.page.get_attribute("#log-download", "href") == f"/jobs/{job}/log.txt"


def test_a_paused_log_pane_holds_new_output_until_it_resumes(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    script = "for i in $(seq 1 50); do echo tick $i; sleep 0.1; done"
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="sh", args=["-c", script])).jobUuid
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.goto(f"{ui.origin}/jobs/{job}")
    log = tab.page.locator("#log")
    expect(log).to_contain_text("tick 1", timeout=TIMEOUT_MS)
    tab.page.check("#log-pause")
    held = len(log.inner_text().split("\n"))
    wait_status(daemon.jobs(), job, {"COMPLETED"})
    expect(tab.page.locator("#log-state[data-ended]")).to_have_count(1, timeout=TIMEOUT_MS)
    assert "tick 50" not in log.inner_text()  # it all came, none of it shown
    assert len(log.inner_text().split("\n")) == held
    tab.page.uncheck("#log-pause")
    expect(log).to_contain_text("tick 50")
    assert log.inner_text().split() == " ".join(f"tick {i}" for i in range(1, 51)).split()


def test_stop_a_running_job(world: tuple[RunningDaemon, UiProcess], tab: Tab) -> None:
    daemon, ui = world
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="sleep", args=["60"])).jobUuid
    wait_status(daemon.jobs(), job, {"RUNNING"})
    tab.sign_in(mint(daemon, "admin"))
    tab.page.goto(f"{ui.origin}/jobs/{job}")
    tab.page.click("#action-stop")
    status = tab.page.locator("td[data-field=status]")
    expect(status).to_have_text("STOPPED", timeout=TIMEOUT_MS)
    assert daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job)).status == "STOPPED"


def test_every_page_loads_without_console_errors(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    tab.sign_in(mint(daemon, "admin"))
    flow = daemon.jobs().RunWorkflow(pb.RunWorkflowRequest(yamlContent=WORKFLOW)).workflowUuid
    pages = ("/jobs", "/jobs?status=COMPLETED", "/jobs?sort=duration&order=desc", "/run",
             "/workflows", f"/workflows/{flow}", "/host", "/resources")  # fmt: skip
    for path in pages:
        tab.page.goto(f"{ui.origin}{path}")
        tab.page.wait_for_load_state("load")
        assert tab.page.locator("main h1").count() == 1, path
    tab.page.goto(f"{ui.origin}/workflows/{flow}")  # the graph and the timeline, live
    expect(tab.page.locator("#timeline rect.s-completed")).to_have_count(2, timeout=TIMEOUT_MS)
    expect(tab.page.locator("#dag rect.s-completed")).to_have_count(2)
    # the host page's live metrics arrive through its event stream
    tab.page.goto(f"{ui.origin}/host")
    expect(tab.page.locator("#host-live td[data-field=memory]")).not_to_be_empty(timeout=TIMEOUT_MS)


def test_the_host_page_charts_each_core_and_lists_disks_and_top_processes(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.goto(f"{ui.origin}/host")
    cores = tab.page.locator("#chart-host-cpu")
    expect(cores).to_have_attribute("data-points", re.compile(r"^[1-9]"), timeout=TIMEOUT_MS)
    first = int(cores.get_attribute("data-points") or 0)
    # a sample every 2 s: the charts gain points live
    expect(cores).not_to_have_attribute("data-points", str(first), timeout=TIMEOUT_MS)
    legend = tab.page.locator("#chart-host-cpu .u-legend .u-series")
    assert legend.count() == (os.cpu_count() or 1) + 1  # the time and one per core
    for chart in ("mem", "net", "disk"):
        assert tab.page.locator(f"#chart-host-{chart} canvas").count() == 1
    assert tab.page.locator("#host-disks tbody tr").count() >= 1
    expect(tab.page.locator("#host-top-cpu tbody tr td").first).not_to_have_text("none")


def test_filters_change_the_url_and_the_rows(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, _ = world
    for name in ("filter-alpha", "filter-beta"):
        daemon.jobs().RunJob(pb.RunJobRequest(command="true", name=name))
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.fill("input[name=name]", "filter-al")
    tab.page.click(".filters button")
    tab.page.wait_for_url(re.compile(r"/jobs\?.*name=filter-al"))
    rows = tab.page.locator("#job-rows tr")
    expect(rows).to_have_count(1)
    assert "filter-alpha" in rows.first.inner_text()
    # rows change live: a new job that matches appears without a reload
    daemon.jobs().RunJob(pb.RunJobRequest(command="true", name="filter-also"))
    expect(rows).to_have_count(2, timeout=TIMEOUT_MS)
    assert "name=filter-al" in tab.page.url


def test_a_finished_jobs_charts_and_summary_come_from_its_history(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="sleep", args=["2.5"])).jobUuid
    wait_status(daemon.jobs(), job, {"COMPLETED"})
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.goto(f"{ui.origin}/jobs/{job}")
    for chart in ("cpu", "mem", "io", "net"):
        expect(tab.page.locator(f"#chart-{chart}")).to_have_attribute(
            "data-points", re.compile(r"^[1-9]"), timeout=TIMEOUT_MS
        )
        assert tab.page.locator(f"#chart-{chart} canvas").count() == 1
    assert tab.page.locator("#chart-gpu").count() == 0  # no GPUs: no GPU chart
    row = tab.page.locator("#job-summary tr[data-metric=cpu] td")
    expect(row).to_have_count(6, timeout=TIMEOUT_MS)  # min, avg, p50, p95, p99, max
    assert row.last.inner_text().endswith("%")


# slow (the default suite's budget): the fan-out of samples it relies on is in
# tests/unit/ui/test_feeds.py
@pytest.mark.slow
def test_a_running_jobs_charts_gain_points(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="sleep", args=["4"])).jobUuid
    tab.sign_in(mint(daemon, "viewer"))
    tab.page.goto(f"{ui.origin}/jobs/{job}")
    chart = tab.page.locator("#chart-cpu")
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]"), timeout=TIMEOUT_MS)
    first = int(chart.get_attribute("data-points") or 0)
    expect(chart).not_to_have_attribute("data-points", str(first), timeout=TIMEOUT_MS)
    assert tab.page.locator("#chart-cpu canvas").count() == 1  # drawn by uPlot


def test_a_file_chosen_in_the_run_form_is_in_the_jobs_workspace(
    world: tuple[RunningDaemon, UiProcess], tab: Tab
) -> None:
    daemon, ui = world
    tab.sign_in(mint(daemon, "admin"))
    tab.page.goto(f"{ui.origin}/run")
    tab.page.fill("#run-command", "cat note.txt")
    note = {"name": "note.txt", "mimeType": "text/plain", "buffer": b"chosen in the browser\n"}
    tab.page.set_input_files("#run-uploads", files=[note])
    tab.page.click("#run-submit")
    tab.page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(tab.page.locator("#log")).to_contain_text("chosen in the browser", timeout=TIMEOUT_MS)
