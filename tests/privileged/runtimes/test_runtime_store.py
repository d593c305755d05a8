"""The runtime store on a real directory: versioned installs, pins, atomic
current pointer, removal refused while used, bytes freed like du."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from joblet.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from joblet.runtimes.record import InstalledRuntime
from joblet.runtimes.spec import parse_spec
from joblet.runtimes.store import RuntimeStore

pytestmark = pytest.mark.privileged

SPEC = """\
name: {name}
requirements: {{architectures: [{arch}], gpu: {gpu}}}
environment: {{PATH: "/opt/runtime/bin:${{PATH}}"}}
mounts: [{{source: share, target: /usr/local/share/rt}}]
test: {{command: hello}}
"""


def install(
    store: RuntimeStore, name: str = "tools", *, force: bool = False, arch: str = "amd64",
    gpu: str = "false", content: bytes = b"v1",
) -> InstalledRuntime:  # fmt: skip
    text = SPEC.format(name=name, arch=arch, gpu=gpu)
    with store.begin_build(name, force) as staging:
        (staging.tree / "bin").mkdir()
        (staging.tree / "bin" / "hello").write_bytes(content)
        (staging.tree / "share").mkdir()
        record = InstalledRuntime(
            spec=parse_spec(text), spec_text=text, build_id=uuid.uuid4().hex, source="local",
            sha256="0" * 64, size_bytes=4096, packages=(), installed_at="2026-01-01T00:00:00Z",
            build_job_id="job",
        )  # fmt: skip
        store.commit(staging, record)
    return record


@pytest.fixture
def store(tmp_path: Path) -> RuntimeStore:
    store = RuntimeStore(tmp_path / "runtimes", "amd64")
    store.load()
    return store


def test_install_acquire_mount_shape(store: RuntimeStore) -> None:
    record = install(store)
    mount = store.acquire("tools", "job-1")
    tree = store.root / "tools" / record.build_id / "tree"
    assert mount.tree == str(tree)
    assert mount.build_id == record.build_id
    assert mount.extra_mounts == ((str(tree / "share"), "/usr/local/share/rt"),)
    assert mount.environment == (("PATH", "/opt/runtime/bin:${PATH}"),)
    assert os.readlink(store.root / "tools" / "current") == record.build_id
    assert (tree / "bin" / "hello").read_bytes() == b"v1"
    assert not any((store.root / ".staging").iterdir())


def test_a_new_store_reads_what_was_installed(store: RuntimeStore, tmp_path: Path) -> None:
    record = install(store)
    again = RuntimeStore(store.root, "amd64")
    again.load()
    assert [r.build_id for r in again.installed()] == [record.build_id]


def test_unknown_and_bad_references(store: RuntimeStore) -> None:
    with pytest.raises(NotFound):
        store.acquire("nope", "job-1")
    for bad in ("../x", "a/b", "a\0b"):
        with pytest.raises(InvalidArgument):
            store.acquire(bad, "job-1")
        with pytest.raises(InvalidArgument):
            store.remove(bad)


def test_wrong_arch_and_missing_gpu_fail_precondition(tmp_path: Path) -> None:
    store = RuntimeStore(tmp_path / "runtimes", "amd64", has_gpu=lambda: False)
    store.load()
    install(store, "armonly", arch="arm64")
    install(store, "cuda", gpu="true")
    with pytest.raises(FailedPrecondition, match="arm64"):
        store.acquire("armonly", "j")
    with pytest.raises(FailedPrecondition, match="GPU"):
        store.acquire("cuda", "j")
    assert not store.available(store.get("armonly"))  # type: ignore[arg-type]


def test_a_reference_naming_another_architecture(store: RuntimeStore) -> None:
    install(store, "python-3.11")
    assert store.acquire("python:3.11@amd64", "j1").name == "python-3.11"
    assert store.acquire("python:3.11@x86_64", "j2").name == "python-3.11"
    with pytest.raises(FailedPrecondition, match="arm64"):
        store.acquire("python:3.11@arm64", "j3")


def test_one_build_per_name_and_already_exists(store: RuntimeStore) -> None:
    install(store)
    with pytest.raises(AlreadyExists):
        install(store)
    with store.begin_build("other", False):
        store.set_build_job("other", "job-42")
        assert store.building("other")
        with pytest.raises(Aborted, match="job-42"):
            install(store, "other")
    assert not store.building("other")


def test_failed_build_leaves_nothing(store: RuntimeStore) -> None:
    with pytest.raises(RuntimeError), store.begin_build("broken", False) as staging:
        (staging.tree / "half").write_text("x")
        raise RuntimeError("build failed")
    assert sorted(p.name for p in store.root.iterdir()) == [".staging"]
    assert not any((store.root / ".staging").iterdir())
    assert store.get("broken") is None


def test_force_reinstall_keeps_the_pinned_build_until_its_job_ends(
    store: RuntimeStore,
) -> None:
    old = install(store)
    old_mount = store.acquire("tools", "running-job")
    new = install(store, force=True, content=b"v2")
    assert Path(old_mount.tree).is_dir()  # still mounted by the running job
    assert store.acquire("tools", "next-job").build_id == new.build_id
    store.release("running-job")
    assert not (store.root / "tools" / old.build_id).exists()
    store.release("running-job")  # idempotent
    assert (store.root / "tools" / new.build_id / "tree" / "bin" / "hello").read_bytes() == b"v2"


def test_superseded_unpinned_build_goes_at_once(store: RuntimeStore) -> None:
    old = install(store)
    install(store, force=True)
    assert not (store.root / "tools" / old.build_id).exists()


def test_reacquire_after_restart_then_garbage_collection(store: RuntimeStore) -> None:
    old = install(store)
    store.acquire("tools", "job-a")
    install(store, force=True)
    restarted = RuntimeStore(store.root, "amd64")
    restarted.load()
    mount = restarted.reacquire("tools", old.build_id, "job-a")
    restarted.collect_garbage()
    assert Path(mount.tree).is_dir()
    restarted.release("job-a")
    assert not (store.root / "tools" / old.build_id).exists()
    with pytest.raises(NotFound):
        restarted.reacquire("tools", old.build_id, "job-b")


def test_remove_refused_while_pinned_then_frees_du_bytes(store: RuntimeStore) -> None:
    record = install(store)
    tree = store.root / "tools" / record.build_id / "tree"
    (tree / "big").write_bytes(os.urandom(2 * 1024 * 1024))
    os.link(tree / "big", tree / "big-again")
    store.acquire("tools", "job-1")
    with pytest.raises(FailedPrecondition, match="job-1"):
        store.remove("tools")
    store.release("job-1")
    du = subprocess.run(
        ["du", "-s", "--block-size=1", str(store.root / "tools")],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = int(du.stdout.split()[0])
    freed = store.remove("tools")
    assert abs(freed - expected) <= expected / 100
    assert not (store.root / "tools").exists()
    with pytest.raises(NotFound):
        store.remove("tools")


def test_remove_does_not_follow_links(store: RuntimeStore, tmp_path: Path) -> None:
    record = install(store)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("host data")
    (store.root / "tools" / record.build_id / "tree" / "link").symlink_to(precious)
    store.remove("tools")
    assert (precious / "keep").read_text() == "host data"


def test_a_damaged_runtime_is_left_and_a_cut_first_install_removed(
    store: RuntimeStore,
) -> None:
    damaged = install(store, "damaged")
    (store.root / "damaged" / damaged.build_id / "runtime.json").write_text("{not json")
    cut = store.root / "cut" / ("c" * 32)
    (cut / "tree").mkdir(parents=True)  # a first install that never got its current link
    (store.root / "UPPER").mkdir()  # no runtime name: never loaded
    restarted = RuntimeStore(store.root, "amd64")
    restarted.load()
    assert [r.name for r in restarted.installed()] == []
    restarted.collect_garbage()
    assert (store.root / "damaged" / damaged.build_id / "tree").is_dir()
    assert not (store.root / "cut").exists()
    assert (store.root / "UPPER").is_dir()
