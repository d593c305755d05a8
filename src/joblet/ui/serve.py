"""`joblet ui`: read keys and certificates, bind, drop root, serve.

Everything secret (the login key, the UI's client keys, the TLS key) is read
while the process is still root; then it binds its port and becomes
`ui.user`, so a flaw in the web layer runs as nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import signal
import ssl
import tempfile
from pathlib import Path

from aiohttp import web

from joblet.daemon.revocation_watch import RevocationWatch
from joblet.errors import ConfigError
from joblet.isolation.libc import limit_malloc_arenas, malloc_trim, set_pdeathsig
from joblet.ui.app import UiState, build_app
from joblet.ui.cert_login import TLS_IMPORTS
from joblet.ui.config import UiConfig, listen_problem, login_key_path, parse_listen
from joblet.ui.handoff import Handoff
from joblet.ui.tokens import Redeemer, load_or_create_key
from joblet.ui.upstream import Upstream, read_all_nodes

log = logging.getLogger("joblet.ui")


def tls_context(cert_pem: str, key_pem: str, ca_pem: str = "") -> ssl.SSLContext:
    """A server context from PEM text (the daemon config holds it inline).
    With `ca_pem` it asks for an optional client certificate of that CA (sign
    in with a certificate); one of another CA fails the handshake."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
        context.verify_mode = ssl.CERT_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_text(cert_pem)
        key.touch(mode=0o600)
        key.write_text(key_pem)
        context.load_cert_chain(cert, key)
    return context


# Imported on first use deep inside Jinja2, aiohttp and the codecs; after the
# drop the interpreter's own files may be unreadable (a Python under /root).
# concurrent.futures.thread: aiohttp writes an uploaded file past its spool
# size to disk through the loop's default executor, made on first use.
LATE_IMPORTS = ("encodings.unicode_escape", "encodings.idna", "encodings.ascii",
                "encodings.latin_1", "encodings.utf_8", "json.decoder", "http.cookies",
                "concurrent.futures.thread")  # fmt: skip


# Compiled at start: every visit needs them. The other pages compile on their
# first visit (the compiler is loaded by then: no file is read after the drop).
EAGER_TEMPLATES = ("base.html", "login.html", "jobs.html", "job_rows.html", "error.html")


def warm_up(state: UiState) -> None:
    """Everything the process would otherwise load lazily, before it drops root:
    modules, the common templates, both roles' channels; then start-up's
    garbage (the command line's parser, the config's YAML) goes back."""
    import gc
    import importlib

    for name in LATE_IMPORTS + (TLS_IMPORTS if state.config.tls else ()):
        importlib.import_module(name)
    for template in EAGER_TEMPLATES:
        state.templates.get_template(template)
    for node in state.upstream.names:
        for role in ("admin", "viewer"):
            state.upstream.as_role(role, node)
    gc.collect()
    malloc_trim()


def drop_privileges(user: str, exit_with_parent: bool) -> None:
    """Become `user` (no supplementary groups) when root; a no-op otherwise."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise ConfigError(f"ui.user {user!r} is not a user on this host") from exc
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if exit_with_parent:
        # prctl(2): a change of credentials clears the parent-death signal
        parent = os.getppid()
        set_pdeathsig(signal.SIGTERM)
        if os.getppid() != parent:
            raise SystemExit(0)
    log.info("running as %s (uid %d)", user, entry.pw_uid)


def prepare(handoff: Handoff) -> tuple[UiConfig, UiState, ssl.SSLContext | None]:
    """The effective config, the app's state and the TLS context, or ConfigError."""
    config = handoff.ui
    if handoff.listen:
        host, port = parse_listen(handoff.listen)
        config = UiConfig(**{**config.__dict__, "host": host, "port": port})
    problem = listen_problem(config)
    if problem:
        raise ConfigError(problem)
    path = handoff.clients or config.clients
    assert path is not None
    upstream = Upstream(read_all_nodes(path, config.nodes))
    daemon = handoff.daemon
    key = load_or_create_key(login_key_path(daemon.root))
    context, revocations = None, None
    if config.tls:
        context = tls_context(daemon.server_cert, daemon.server_key, daemon.ca_cert)
        revocations = RevocationWatch(daemon.crl, daemon.ca_cert)
        revocations.load()  # as root: after the drop it may be unreadable
    state = UiState(config, upstream, Redeemer(key), revocations=revocations)
    return config, state, context


TRIM_EVERY_S = 5.0


async def trim_heap(stop: asyncio.Event) -> None:
    """Now and then hand the C heap's free pages back: a burst of pages and
    streams (protobuf, TLS buffers) would otherwise stay in the idle RSS."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TRIM_EVERY_S)
        malloc_trim()


async def run(config: UiConfig, state: UiState, context: ssl.SSLContext | None,
              exit_with_parent: bool) -> None:  # fmt: skip
    # open event streams end with the process: no minute-long wait for them
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=context)
    await site.start()
    warm_up(state)
    drop_privileges(config.user, exit_with_parent)
    log.info("joblet ui listening on %s (daemon %s)", config.url(), state.upstream.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    trimmer = asyncio.create_task(trim_heap(stop), name="trim-heap")
    try:
        await stop.wait()
    finally:
        await trimmer
        with contextlib.suppress(Exception):
            await runner.cleanup()


def serve_ui(handoff: Handoff) -> None:
    # before gRPC's threads start: a UI that mostly waits needs no arena per thread
    limit_malloc_arenas(2)
    config, state, context = prepare(handoff)
    try:
        asyncio.run(run(config, state, context, handoff.exit_with_parent))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
