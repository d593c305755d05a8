"""The shipped runtimes' build scripts, run for real: each builds into a directory
mounted at /opt/runtime in a private mount namespace (the host's /opt is never
written), and the result runs from there with the host's copies hidden.

The python runtimes' wheels come from rnx's preparation (its cache, filled by
`pip download` from the machine's package index on first use).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.cli.runtime_prepare import prepare

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

RUNTIMES = Path(__file__).resolve().parents[3] / "runtimes"


def in_namespace(script: str, *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`script` in a private mount namespace whose /opt is an empty tmpfs."""
    prologue = "set -eu; mount -t tmpfs -o size=1m tmpfs /opt; mkdir /opt/runtime\n"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", prologue + script],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
    )  # fmt: skip


def build(name: str, work: Path) -> Path:
    """The runtime's files as rnx uploads them, in work/src; built into work/tree."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1)")
    src, tree = work / "src", work / "tree"
    for entry in prepare(RUNTIMES / name, io.StringIO()):
        path = src / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.content)
        path.chmod(entry.mode)
    tree.mkdir()
    run = in_namespace(f"mount --bind {tree} /opt/runtime\nSRC={src} sh {src}/build.sh")
    assert run.returncode == 0, run.stdout + run.stderr
    return tree


def run_on(tree: Path, command: str, *, hide: tuple[str, ...] = ()) -> str:
    """`command` with `tree` read-only at /opt/runtime and `hide` covered by empty tmpfs."""
    covers = "".join(f"mount -t tmpfs -o size=1m,ro tmpfs {path}\n" for path in hide)
    run = in_namespace(
        f"mount --bind -o ro {tree} /opt/runtime\n{covers}"
        f"PATH=/opt/runtime/venv/bin:/opt/runtime/jdk/bin:$PATH\n{command}"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)  # hundreds of MB


def test_python_3_11_runs_its_own_numpy_without_the_hosts_python(work: Path) -> None:
    tree = build("python-3.11", work)
    out = run_on(
        tree,
        "python3 -c 'import numpy, sys; print(numpy.__version__, numpy.__file__, sys.prefix)'",
        hide=("/usr/lib/python3.11", "/usr/lib/python3", "/etc"),
    )
    site = "/opt/runtime/venv/lib/python3.11/site-packages"
    assert out == f"2.2.6 {site}/numpy/__init__.py /opt/runtime/venv\n"
    assert (tree / ".packages").read_text() == "numpy==2.2.6\n"
    assert not (tree / "venv" / "bin" / "pip").exists()  # pip ran from Debian's wheel
    links = [p for p in tree.rglob("*") if p.is_symlink() and os.readlink(p).startswith("/")]
    assert {os.readlink(p) for p in links} <= {"/opt/runtime/python/bin/python3.11"}
    # bytecode is there, checked by hash: a read-only tree needs no writes
    assert list((tree / "venv/lib/python3.11/site-packages/numpy/__pycache__").glob("*.pyc"))


def test_python_3_11_ml_imports_its_four_packages(work: Path) -> None:
    tree = build("python-3.11-ml", work)
    out = run_on(
        tree,
        "python3 -c 'import numpy, pandas, scipy, sklearn; "
        "print(numpy.__version__, pandas.__version__, scipy.__version__, sklearn.__version__)'",
        hide=("/usr/lib/python3.11", "/usr/lib/python3"),
    )
    assert out == "2.2.6 2.2.3 1.15.3 1.6.1\n"


def test_openjdk_17_compiles_and_runs_a_file_with_the_hosts_jdk_hidden(work: Path) -> None:
    tree = build("openjdk-17", work)
    assert not [p for p in tree.rglob("*") if p.is_symlink()]  # links resolved
    job = work / "job"
    job.mkdir()
    (job / "Hi.java").write_text(
        "public class Hi { public static void main(String[] a) {"
        ' System.out.println("hi " + System.getProperty("java.home")); } }'
    )
    out = run_on(
        tree,
        f"cd {job} && javac Hi.java && java -cp . Hi",
        hide=("/usr/lib/jvm", "/etc/java-17-openjdk", "/etc/ssl/certs/java"),
    )
    assert out == "hi /opt/runtime/jdk\n"
    assert (tree / ".packages").read_text().startswith("openjdk==17.")


def test_a_build_fails_clearly_without_its_wheels(work: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1)")
    src = work / "src"
    shutil.copytree(RUNTIMES / "python-3.11", src)
    (work / "tree").mkdir()
    run = in_namespace(f"mount --bind {work / 'tree'} /opt/runtime\nSRC={src} sh {src}/build.sh")
    assert run.returncode != 0
    assert "numpy" in run.stderr
