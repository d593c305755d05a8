"""Deferred imports: a module is bound as usual but runs only when first used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run_python(code: str, tmp_path: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def make_package(tmp_path: Path) -> None:
    """pkg.sub prints when its code runs; pkg.broken fails the first time."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text("print('ran-sub')\nVALUE = 42\n")
    (pkg / "broken.py").write_text(
        "import os\nif not os.path.exists('second'):\n"
        "    open('second', 'w').close()\n    raise RuntimeError('first try')\nOK = True\n"
    )


def test_module_runs_at_first_attribute_read_not_at_import(tmp_path: Path) -> None:
    make_package(tmp_path)
    out = run_python(
        """
        from joblet.deferred import defer_imports, is_deferred
        defer_imports(["pkg.sub"])
        import pkg.sub
        from pkg import sub
        print("imported", is_deferred("pkg.sub"), sub is pkg.sub, sub.__name__)
        print(pkg.sub.VALUE, is_deferred("pkg.sub"), sub.VALUE)
        """,
        tmp_path,
    )
    assert out == ["imported", "True", "True", "pkg.sub", "ran-sub", "42", "False", "42"]


def test_a_failing_module_raises_at_use_and_is_imported_again_later(tmp_path: Path) -> None:
    make_package(tmp_path)
    out = run_python(
        """
        import sys
        from joblet.deferred import defer_imports
        defer_imports(["pkg.broken"])
        import pkg.broken
        try:
            pkg.broken.OK
        except RuntimeError as exc:
            print("raised", "pkg.broken" in sys.modules)
        import importlib
        print(importlib.import_module("pkg.broken").OK)
        """,
        tmp_path,
    )
    assert out == ["raised", "False", "True"]


def test_modules_already_imported_are_left_alone(tmp_path: Path) -> None:
    out = run_python(
        """
        import json
        from joblet.deferred import defer_imports, is_deferred
        defer_imports(["json", "colorsys"])
        import colorsys
        print(is_deferred("json"), is_deferred("colorsys"), colorsys.rgb_to_hsv(1, 0, 0)[2])
        """,
        tmp_path,
    )
    assert out == ["False", "True", "1"]


def test_sync_grpc_client_works_without_running_asyncio(tmp_path: Path) -> None:
    """What rnx does: a synchronous channel and a protobuf round trip."""
    out = run_python(
        """
        from joblet.deferred import UNUSED_BY_SYNC_CLIENT, defer_imports, is_deferred
        defer_imports(UNUSED_BY_SYNC_CLIENT)
        import grpc
        from google.protobuf import json_format
        from joblet.api import joblet_pb2 as pb
        channel = grpc.insecure_channel("127.0.0.1:1")
        channel.close()
        jobs = pb.Jobs.FromString(pb.Jobs(jobs=[pb.Job(uuid="u")]).SerializeToString())
        print(jobs.jobs[0].uuid, json_format.MessageToJson(jobs).count("u"))
        print(*(is_deferred(name) for name in UNUSED_BY_SYNC_CLIENT))
        print(grpc.aio.Channel.__name__, is_deferred("asyncio"))
        """,
        tmp_path,
    )
    assert out[0] == "u"
    assert out[2:] == ["True", "True", "True", "Channel", "False"]
