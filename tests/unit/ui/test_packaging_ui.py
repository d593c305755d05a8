"""The vendored front end matches its lock, ships its licences, stays small;
the daemon and rnx never import the web packages."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

import joblet.ui

STATIC = Path(joblet.ui.__file__).parent / "static"
VENDOR = STATIC / "vendor"
BUDGET_GZIPPED = 150 * 1024


def locked() -> list[tuple[str, str, str]]:
    lines = (VENDOR / "VENDOR.lock").read_text().splitlines()
    return [tuple(line.split()) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def test_every_vendored_file_has_its_locked_sha256() -> None:
    entries = locked()
    assert {name for _, name, _ in entries} == {
        p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css")
    }
    for package, name, digest in entries:
        assert "@" in package, package  # pinned: package@version
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_each_vendored_package_ships_its_licence() -> None:
    for package, _, _ in locked():
        assert (VENDOR / f"LICENSE.{package.rsplit('@', 1)[0]}").stat().st_size > 100


def test_all_scripts_and_styles_fit_the_budget_gzipped() -> None:
    files = [p for p in STATIC.rglob("*") if p.suffix in (".js", ".css")]
    total = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    print(f"JS+CSS gzipped: {total} bytes in {len(files)} files")
    assert total <= BUDGET_GZIPPED


def test_no_template_has_inline_script_or_style() -> None:
    for page in (STATIC.parent / "templates").glob("*.html"):
        text = page.read_text()
        assert "<script>" not in text and " on" + "click=" not in text, page.name
        assert "style=" not in text and "<style" not in text, page.name


# Every module of the UI's pages, imported as the serving process does.
UI_PAGES = (
    "from joblet.ui import actions, cert_login, events, log_pages, node_pages, pages\n"
    "from joblet.ui import resource_actions, runtime_actions\n"
)


def assert_exits_cleanly(code: str) -> None:
    """Runs `code` in a fresh interpreter (so its imports start from none)."""
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_daemon_and_rnx_do_not_import_the_web_packages() -> None:
    code = (
        "import sys\n"
        "import joblet.daemon.main, joblet.daemon.server, joblet.daemon.ui_service\n"
        "import joblet.cli.main, joblet.cli.ui\n"
        "bad = sorted(m for m in ('aiohttp', 'jinja2', 'playwright') if m in sys.modules)\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    assert_exits_cleanly(code)


def test_the_ui_process_does_not_import_the_generated_stubs() -> None:
    # every service's stub module costs the UI about 3 MB of idle memory
    code = (
        "import sys\n"
        "import joblet.daemon.main, joblet.ui.serve\n"
        + UI_PAGES
        + "bad = 'joblet.api.joblet_pb2_grpc' in sys.modules\n"
        "sys.exit(1 if bad else 0)\n"
    )
    assert_exits_cleanly(code)


def test_the_ui_process_does_not_import_rnx() -> None:
    # the CLI's modules (argparse commands, tables) are idle memory in the UI
    code = (
        "import sys\n"
        "import joblet.daemon.main, joblet.ui.serve\n"
        + UI_PAGES
        + "bad = sorted(m for m in sys.modules\n"
        "             if m.startswith('joblet.cli.') or m == 'joblet.cli')\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    assert_exits_cleanly(code)


def test_the_serving_process_does_not_import_the_config_parser() -> None:
    # `joblet ui` parses the config and execs joblet.ui.runtime: argparse's
    # commands, YAML and the config model (~3 MB) stay in the process that ended
    code = (
        "import sys\n"
        "import joblet.ui.runtime, joblet.ui.serve, joblet.ui.handoff\n"
        + UI_PAGES
        + "heavy = ('yaml', 'joblet.config.loader', 'joblet.config.model', 'joblet.daemon.main')\n"
        "bad = sorted(m for m in heavy if m in sys.modules)\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    assert_exits_cleanly(code)
