"""The allocation table and the strategies (pure), with property tests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from joblet.gpu.model import Gpu, GpuHost, GpuRequest
from joblet.gpu.strategies import STRATEGIES, Context, pack, spread
from joblet.gpu.table import AllocationTable

MEMORIES = (16_000, 24_000, 40_000, 80_000)


def gpu(index: int, memory_mb: int = 80_000, mig: bool = False) -> Gpu:
    return Gpu(index=index, uuid=f"GPU-{index:04d}", minor=index + 10, memory_mb=memory_mb, mig=mig)


def host(*gpus: Gpu) -> GpuHost:
    return GpuHost(gpus=gpus, source="static")


hosts = st.lists(st.sampled_from(MEMORIES), min_size=0, max_size=6).map(
    lambda mems: host(*(gpu(i, m) for i, m in enumerate(mems)))
)
requests = st.builds(
    GpuRequest,
    count=st.integers(1, 3),
    memory_mb=st.sampled_from((0, 0, 20_000, 50_000)),
    pins=st.just(())
    | st.lists(st.sampled_from(["0", "1", "GPU-0002", "5"]), max_size=2, unique=True).map(tuple),
).map(lambda r: GpuRequest(len(r.pins), r.memory_mb, r.pins) if r.pins else r)
ops = st.lists(
    st.tuples(st.sampled_from(["start", "end", "restart"]), st.integers(0, 7), requests),
    max_size=30,
)


def check_invariants(table: AllocationTable, asked: dict[str, GpuRequest]) -> None:
    by_index = table.host.by_index()
    seen: dict[int, str] = {}
    for job, grant in table.grants().items():
        req = asked[job]
        assert len(grant.indices) == req.wanted
        for index in grant.indices:
            gpu_ = by_index[index]
            assert not gpu_.mig
            assert gpu_.memory_mb >= req.memory_mb
            if req.pins:
                assert str(index) in req.pins or gpu_.uuid in req.pins
            if not table.sharing:
                assert index not in seen, f"GPU {index} given to {seen.get(index)} and {job}"
            seen[index] = job
    if table.sharing:
        for gpu_ in table.host.gpus:
            grants = [g for g in table.grants().values() if gpu_.index in g.indices]
            if any(g.memory_mb == 0 for g in grants):
                assert len(grants) == 1
            assert sum(g.memory_mb for g in grants) <= gpu_.memory_mb


@settings(max_examples=150, deadline=None)
@given(hosts, ops, st.booleans(), st.sampled_from(sorted(STRATEGIES)))
def test_table_holds_its_invariants_across_start_end_crash_and_restart(
    h: GpuHost, steps: list[tuple[str, int, GpuRequest]], sharing: bool, strategy: str
) -> None:
    table = AllocationTable(h, sharing=sharing, strategy=strategy)
    asked: dict[str, GpuRequest] = {}
    for op, n, req in steps:
        job = f"job-{n}"
        if op == "start" and job not in table.grants():
            asked[job] = req
            grant = table.allocate(job, req)
            if grant is None and not table.impossible(req):
                # It waits only when what it needs is held by others.
                assert table.grants(), "a possible request refused on an idle node"
        elif op == "end":
            table.release(job)
        elif op == "restart":
            # A restarted daemon rebuilds the table from the re-attached jobs' records.
            rebuilt = AllocationTable(h, sharing=sharing, strategy=strategy)
            for held in table.grants().values():
                rebuilt.restore(held.job_id, held.indices, held.memory_mb)
            assert rebuilt.grants() == table.grants()
            table = rebuilt
        check_invariants(table, asked)
    for job in list(table.grants()):
        table.release(job)
    assert table.grants() == {}


@given(hosts, requests)
def test_impossible_requests_are_never_granted(h: GpuHost, req: GpuRequest) -> None:
    table = AllocationTable(h)
    if table.impossible(req):
        assert table.allocate("j", req) is None
    else:
        assert table.allocate("j", req) is not None  # an idle node meets any possible request


def test_no_gpus_says_so_and_names_what_exists() -> None:
    assert "this node has no GPUs" in AllocationTable(host()).impossible(GpuRequest(1))
    table = AllocationTable(host(gpu(0, 16_000), gpu(1, 24_000, mig=True)))
    why = table.impossible(GpuRequest(1, 20_000))
    assert "at least 20000 MB" in why and "0: GPU (16000 MB)" in why and "MIG" in why


def test_memory_request_refused_when_inventory_knows_no_sizes() -> None:
    table = AllocationTable(GpuHost(gpus=(gpu(0, 0),), memory_known=False, source="procfs"))
    assert "does not know GPU memory" in table.impossible(GpuRequest(1, 1000))
    assert table.impossible(GpuRequest(1)) == ""


def test_exclusive_second_job_waits_until_the_first_releases() -> None:
    table = AllocationTable(host(gpu(0)))
    assert table.allocate("a", GpuRequest(1)) is not None
    assert table.allocate("b", GpuRequest(1)) is None
    assert table.release("a") == (0,)
    grant = table.allocate("b", GpuRequest(1))
    assert grant is not None and grant.indices == (0,)


def test_sharing_packs_declared_memory_onto_one_gpu() -> None:
    table = AllocationTable(host(gpu(0, 40_000)), sharing=True)
    assert table.allocate("a", GpuRequest(1, 20_000)) is not None
    assert table.allocate("b", GpuRequest(1, 20_000)) is not None
    assert table.allocate("c", GpuRequest(1, 1)) is None  # full
    assert table.holders(0) == ("a", "b")
    table.release("a")
    assert table.allocate("d", GpuRequest(1)) is None  # undeclared memory: whole GPU


def test_pins_by_index_and_uuid() -> None:
    table = AllocationTable(host(gpu(0), gpu(1), gpu(2)))
    grant = table.allocate("a", GpuRequest(2, 0, ("2", "GPU-0000")))
    assert grant is not None and grant.indices == (0, 2)
    assert "among 7" in table.impossible(GpuRequest(1, 0, ("7",)))


def test_best_fit_takes_the_smallest_that_fits() -> None:
    table = AllocationTable(
        host(gpu(0, 80_000), gpu(1, 24_000), gpu(2, 40_000)), strategy="best-fit"
    )
    grant = table.allocate("a", GpuRequest(1, 30_000))
    assert grant is not None and grant.indices == (2,)


def test_pack_takes_the_closest_pair() -> None:
    gpus = [gpu(i) for i in range(4)]
    topology = {frozenset((0, 1)): 40, frozenset((2, 3)): 10, frozenset((1, 2)): 30}
    chosen = pack(gpus, 2, Context(topology=topology))
    assert chosen is not None and [g.index for g in chosen] == [2, 3]


def test_spread_takes_the_least_recently_released() -> None:
    table = AllocationTable(host(gpu(0), gpu(1), gpu(2)), strategy="spread")
    for job in ("a", "b", "c"):
        table.allocate(job, GpuRequest(1))
    table.release("b")  # GPU 1
    table.release("a")  # GPU 0, later
    table.release("c")  # GPU 2, latest
    grant = table.allocate("d", GpuRequest(1))
    assert grant is not None and grant.indices == (1,)
    assert spread([gpu(0), gpu(1)], 1, Context(released_seq={0: 5})) == (gpu(1),)


@given(
    st.lists(st.sampled_from(MEMORIES), max_size=6),
    st.integers(1, 4),
    st.sampled_from(sorted(STRATEGIES)),
)
def test_every_strategy_returns_distinct_candidates_or_none(
    mems: list[int], count: int, strategy: str
) -> None:
    candidates = [gpu(i, m) for i, m in enumerate(mems)]
    chosen = STRATEGIES[strategy](candidates, count, Context())
    if len(candidates) < count:
        assert chosen is None
    else:
        assert chosen is not None and len(set(chosen)) == count and set(chosen) <= set(candidates)
