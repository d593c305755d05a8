"""The jobs page's sort: orders, ties, the headers' links."""

from __future__ import annotations

from datetime import UTC, datetime

from joblet.api import joblet_pb2 as pb
from joblet.ui import job_sort, views
from joblet.ui.job_sort import Sort

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def job(uuid: str, **fields: object) -> pb.Job:
    return pb.Job(uuid=uuid, **fields)  # type: ignore[arg-type]


JOBS = [
    job("c", name="beta", status="COMPLETED", exitCode=2,
        startTime="2026-01-01T11:00:00Z", endTime="2026-01-01T11:00:05Z"),
    job("a", name="Alpha", status="RUNNING", startTime="2026-01-01T11:59:00Z"),
    job("b", name="gamma", status="FAILED", exitCode=1,
        startTime="2026-01-01T10:00:00Z", endTime="2026-01-01T10:30:00Z"),
]  # fmt: skip


def ids(jobs: list[pb.Job]) -> list[str]:
    return [j.uuid for j in jobs]


def test_each_column_sorts_both_ways() -> None:
    assert ids(job_sort.sort_jobs(JOBS, Sort("name"), NOW)) == ["a", "c", "b"]  # case-blind
    assert ids(job_sort.sort_jobs(JOBS, Sort("name", True), NOW)) == ["b", "c", "a"]
    assert ids(job_sort.sort_jobs(JOBS, Sort("start"), NOW)) == ["b", "c", "a"]
    # a running job's duration runs to now (60 s), between 5 s and 30 min
    assert ids(job_sort.sort_jobs(JOBS, Sort("duration"), NOW)) == ["c", "a", "b"]
    # still running: no exit code, after every ended job
    assert ids(job_sort.sort_jobs(JOBS, Sort("exit"), NOW)) == ["b", "c", "a"]
    assert ids(job_sort.sort_jobs(JOBS, Sort(""), NOW)) == ["c", "a", "b"]  # the API's order


def test_ties_are_broken_by_id_so_screens_neither_repeat_nor_skip() -> None:
    same = [job(u, status="COMPLETED") for u in ("q", "e", "m")]
    assert ids(job_sort.sort_jobs(same, Sort("status"), NOW)) == ["e", "m", "q"]
    assert ids(job_sort.sort_jobs(same, Sort("status", True), NOW)) == ["q", "m", "e"]


def test_a_screen_is_cut_page_by_page_keeping_only_what_it_needs() -> None:
    every = [job(f"{n:04d}", name=f"n{(n * 7919) % 1000:03d}") for n in range(1000)]
    kept: list[pb.Job] = []
    for start in range(0, 1000, 64):  # the listing's pages, in creation order
        kept = job_sort.first_jobs(kept, every[start : start + 64], Sort("name", True), NOW, 51)
        assert len(kept) <= 51
    assert ids(kept) == ids(job_sort.sort_jobs(every, Sort("name", True), NOW))[:51]


def test_an_unknown_column_or_page_is_ignored() -> None:
    assert job_sort.parse_sort({"sort": "secret_environment"}) == Sort("")
    assert job_sort.parse_sort({"sort": "name", "order": "desc"}) == Sort("name", True)
    assert job_sort.parse_sort({"sort": "name", "order": "sideways"}) == Sort("name")
    assert [job_sort.page_number({"page": p}) for p in ("3", "-1", "x", "9" * 20)] == [3, 0, 0, 0]


def test_a_click_on_the_sorted_header_turns_its_order_round() -> None:
    heads = {h.key: h for h in job_sort.headers(Sort("start"))}
    assert (heads["start"].arrow, heads["start"].order) == ("▲", "desc")
    assert (heads["name"].arrow, heads["name"].order) == ("", "asc")
    heads = {h.key: h for h in job_sort.headers(Sort("start", True))}
    assert (heads["start"].arrow, heads["start"].order) == ("▼", "asc")


def test_sorting_and_screens_stay_in_the_url_with_the_filters() -> None:
    query = {"status": "FAILED", "sort": "name", "order": "desc", "page": "2", "junk": "x"}
    assert views.filter_query(query) == "status=FAILED&sort=name&order=desc&page=2"
    assert views.filter_query(query, page="") == "status=FAILED&sort=name&order=desc"
    every = views.list_request(query, every=True)
    assert (every.limit, every.cursor, list(every.statuses)) == (0, "", ["FAILED"])
