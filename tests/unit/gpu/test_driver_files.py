"""Which of the host driver's files a GPU job gets (pure): ldconfig's cache
parsed from a recorded sample, the compute and utility sets selected, each
library bound from its real file under its soname, paths outside the allowed
prefixes refused; and a driver directory scanned (gpu.driverPaths)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joblet.gpu.driver_files import (
    DEFAULT_PREFIXES,
    JOB_BIN,
    JOB_LIB,
    DriverFile,
    driver_env,
    find_driver_files,
    is_driver_library,
    parse_ldconfig,
    select_libraries,
)
from joblet.gpu.job_setup import GpuJobSetup
from joblet.testing.gpus import make_driver_tree

SAMPLE = (Path(__file__).parent / "data" / "ldconfig-p.txt").read_text()
VERSION = "550.54.15"


def fake_realpath(path: str) -> str:
    """The sample's sonames resolve to the versioned files, as on a real host."""
    head, name = os.path.split(path)
    base = name.split(".so")[0]
    return f"{head}/{base}.so.{VERSION}"


def test_the_cache_is_parsed_for_one_architecture_first_entry_wins() -> None:
    entries = dict(parse_ldconfig(SAMPLE, "x86-64"))
    assert entries["libcuda.so.1"] == "/lib/x86_64-linux-gnu/libcuda.so.1"
    assert entries["libc.so.6"] == "/lib/x86_64-linux-gnu/libc.so.6"  # tags with an ABI
    assert len(entries) == 17  # the i386 duplicates are not x86-64's
    assert parse_ldconfig(SAMPLE, "AArch64") == []
    i386 = [line for line in SAMPLE.splitlines() if "(libc6)" in line]
    assert dict(parse_ldconfig("\n".join(i386), ""))["libcuda.so.1"].startswith("/lib/i386")


def test_compute_and_utility_libraries_only_each_under_its_soname() -> None:
    files = select_libraries(parse_ldconfig(SAMPLE, "x86-64"), fake_realpath, DEFAULT_PREFIXES)
    lib = "/lib/x86_64-linux-gnu"
    sonames = {
        "libcuda": "1", "libcudadebugger": "1", "libnvidia-allocator": "1",
        "libnvidia-cfg": "1", "libnvidia-ml": "1", "libnvidia-nvvm": "4",
        "libnvidia-ptxjitcompiler": "1",
        "libnvidia-gpucomp": VERSION,  # no soname entry in the cache: by its own name
    }  # fmt: skip
    assert files == sorted(
        (DriverFile(f"{lib}/{base}.so.{VERSION}", f"{JOB_LIB}/{base}.so.{major}")
         for base, major in sonames.items()),
        key=lambda f: f.target,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "wanted"),
    [("libcuda.so.1", True), ("libcuda.so", True), ("libnvidia-ml.so.550.54.15", True),
     ("libnvidia-glcore.so.550.54.15", False), ("libnvidia-encode.so.1", False),
     ("libcudart.so.12", False), ("libcuda.so.1.txt", False), ("libcuda-evil.so.1", False)],
)  # fmt: skip
def test_which_names_are_the_drivers(name: str, wanted: bool) -> None:
    assert is_driver_library(name) is wanted


def test_a_library_resolving_outside_the_allowed_prefixes_is_left_out() -> None:
    entries = [("libcuda.so.1", "/usr/lib/libcuda.so.1"), ("libnvidia-ml.so.1", "/usr/lib/x")]
    links = {"/usr/lib/libcuda.so.1": "/etc/shadow", "/usr/lib/x": "/usr/lib/libnvidia-ml.so.5"}
    files = select_libraries(entries, links.__getitem__, DEFAULT_PREFIXES)
    assert files == [DriverFile("/usr/lib/libnvidia-ml.so.5", f"{JOB_LIB}/libnvidia-ml.so.1")]
    # A prefix is a directory, not a string prefix: /usr/lib-evil is not /usr/lib.
    links["/usr/lib/x"] = "/usr/lib-evil/libnvidia-ml.so.5"
    assert select_libraries(entries, links.__getitem__, DEFAULT_PREFIXES) == []


def test_a_driver_directory_gives_its_sonames_and_nvidia_smi(tmp_path: Path) -> None:
    tree = make_driver_tree(tmp_path / "driver")
    (tmp_path / "secret").write_text("x")
    (tree / "libnvidia-cfg.so.1").symlink_to(tmp_path / "secret")  # leaves the directory
    files = find_driver_files([str(tree)])
    assert {(f.source, f.target) for f in files} == {
        (str(tree / f"libcuda.so.{VERSION}"), f"{JOB_LIB}/libcuda.so.1"),
        (str(tree / f"libnvidia-ml.so.{VERSION}"), f"{JOB_LIB}/libnvidia-ml.so.1"),
        (str(tree / f"libnvidia-ptxjitcompiler.so.{VERSION}"),
         f"{JOB_LIB}/libnvidia-ptxjitcompiler.so.1"),
        (str(tree / "nvidia-smi"), f"{JOB_BIN}/nvidia-smi"),
    }  # fmt: skip


def test_the_job_environment_finds_the_driver_and_keeps_its_own_paths() -> None:
    files = [DriverFile("/usr/lib/libcuda.so.1", f"{JOB_LIB}/libcuda.so.1")]
    env = driver_env({"PATH": "/opt/x/bin", "LD_LIBRARY_PATH": "/opt/x/lib"}, files)
    assert env["LD_LIBRARY_PATH"] == f"{JOB_LIB}:/opt/x/lib"
    assert env["PATH"] == f"/opt/x/bin:{JOB_BIN}"
    assert driver_env({"A": "1"}, []) == {"A": "1"}  # no driver files: nothing added
    setup = GpuJobSetup(env=(("CUDA_VISIBLE_DEVICES", "GPU-1"),), driver_files=(("/a", "/b"),))
    env = setup.job_env({"PATH": "/bin"})
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-1" and env["PATH"] == f"/bin:{JOB_BIN}"
    assert env["LD_LIBRARY_PATH"] == JOB_LIB


@pytest.mark.parametrize(
    ("raw", "words"),
    [("/usr/lib", "must be a list"), (["lib"], "not an absolute path"), ([3], "must be a list")],
)
def test_gpu_driver_paths_must_be_absolute_directories(raw: object, words: str) -> None:
    from joblet.errors import ConfigError
    from joblet.gpu.config import parse_gpu_config

    assert parse_gpu_config({"driverPaths": ["/opt/d"]}).driver_paths == ("/opt/d",)
    with pytest.raises(ConfigError, match=words):
        parse_gpu_config({"driverPaths": raw})


def test_this_hosts_own_cache_is_read_and_parsed() -> None:
    from joblet.gpu.driver_files import _ldconfig_cache

    arch = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(os.uname().machine, "")
    names = dict(parse_ldconfig(_ldconfig_cache(), arch))
    assert "libc.so.6" in names and os.path.exists(names["libc.so.6"])
