"""`rnx completion`: scripts generated from the parser, run in a real bash."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import FakeJob, FakeJobService, Rnx, insecure_channel, write_config

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cli.commands import ALIASES, JOB_ACTIONS, SHORTCUTS, TOP_LEVEL
from joblet.cli.complete_words import job_words
from joblet.cli.completion import bash_script, fish_script, table, zsh_script
from joblet.cli.main import main
from joblet.cli.tree import command_tree

BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def test_table_has_every_command_alias_and_flag() -> None:
    t = table(command_tree())
    assert set(t.words["rnx"]) >= set(TOP_LEVEL) | set(SHORTCUTS)
    assert set(t.words["rnx job"]) >= set(JOB_ACTIONS)
    for name, aliases in ALIASES.items():
        assert set(aliases) <= set(t.words["rnx job"]), name
        assert set(aliases) <= set(t.words["rnx"]), name
    assert "__complete" not in t.words["rnx"]  # plumbing, not offered
    run_flags = t.flags["rnx job run"]
    assert {"--max-memory", "-f", "--follow", "--node", "--env", "-e"} <= set(run_flags)
    assert "--node" in t.value_flags["rnx job run"]
    assert "--follow" not in t.value_flags["rnx job run"]  # a switch: the next word is not its
    assert t.choices["rnx log --stream"] == ["stdout", "stderr"]
    assert t.words["rnx completion"] == ["bash", "zsh", "fish"]
    for path in ("rnx status", "rnx job stop", "rnx log", "rnx wait", "rnx delete"):
        assert path in t.job_args, path
    assert "rnx job run" not in t.job_args  # its positional is a command line


def test_every_network_and_volume_action_is_offered() -> None:
    tree = command_tree()
    t = table(tree)
    for group in ("network", "volume", "runtime", "workflow"):
        names = [s.name for s in tree.find(group).subcommands]
        assert names and set(names) <= set(t.words[f"rnx {group}"]), group


def test_zsh_and_fish_scripts_name_the_same_commands() -> None:
    tree = command_tree()
    zsh, fish = zsh_script(tree), fish_script(tree)
    assert zsh.startswith("#compdef rnx\n") and "compdef _rnx rnx" in zsh
    assert "_rnx_words+=('rnx job' 'run list ps ls status" in zsh
    assert "__complete jobs" in zsh and "__complete nodes" in zsh
    assert "complete -c rnx -n __fish_use_subcommand -a job -d 'run and manage jobs'" in fish
    assert "-a ps -d 'list jobs'" in fish  # aliases, with the command's help
    stop = "'__fish_seen_subcommand_from job; and __fish_seen_subcommand_from stop'"
    assert f"complete -c rnx -n {stop} -xa '(__rnx_complete jobs)'" in fish
    assert "-l max-memory -r -F" in fish
    assert "-l stream -xa 'stdout stderr'" in fish
    assert "-a __complete" not in fish


def test_completion_command_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    out, err = capsys.readouterr()
    assert out == bash_script(command_tree()) and err == ""
    assert main(["completion", "tcsh"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "invalid choice: 'tcsh'" in err and len(err.splitlines()) == 1


def test_hidden_command_is_not_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out, _ = capsys.readouterr()
    assert "completion" in out and "__complete" not in out


def _job(uuid: str, name: str) -> FakeJob:
    from joblet.api import joblet_pb2 as pb

    return FakeJob(pb.RunJobRequest(command="sleep", name=name), uuid)


# --- bash, for real -------------------------------------------------------


def _shim(directory: Path, config: Path | None = None, insecure: bool = False) -> Path:
    """An `rnx` on PATH that runs this checkout's rnx with this interpreter."""
    factory = "insecure_channel" if insecure else "None"
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from joblet.cli.main import main\n"
        + ("from conftest import insecure_channel\n" if insecure else "")
        + f"sys.exit(main(sys.argv[1:], channel_factory={factory}))\n"
    )
    rnx = directory / "rnx"
    rnx.write_text(f"#!{sys.executable}\n{code}")
    rnx.chmod(0o755)
    return rnx


def _complete(tmp_path: Path, *words: str, env: dict[str, str] | None = None) -> list[str]:
    """COMPREPLY for the command line `words` (the last one is being typed)."""
    assert BASH is not None
    script = tmp_path / "rnx.bash"
    script.write_text(bash_script(command_tree()))
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        "_rnx\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    run_env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "HOME": str(tmp_path), **(env or {})}
    done = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", program],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=run_env,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [w for w in done.stdout.splitlines() if w]


@needs_bash
def test_bash_registers_the_function(tmp_path: Path) -> None:
    _shim(tmp_path)
    assert BASH is not None
    done = subprocess.run(
        [BASH, "--norc", "-c", "source <(rnx completion bash); complete -p rnx"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}", "HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip() == "complete -o default -F _rnx rnx"


@needs_bash
def test_bash_completes_commands_flags_and_choices(tmp_path: Path) -> None:
    assert _complete(tmp_path, "rnx", "jo") == ["job"]
    assert _complete(tmp_path, "rnx", "job", "l") == ["list", "ls", "log", "logs"]
    assert _complete(tmp_path, "rnx", "ps", "--li") == ["--limit"]
    assert _complete(tmp_path, "rnx", "log", "--stream", "") == ["stdout", "stderr"]
    assert _complete(tmp_path, "rnx", "completion", "") == ["bash", "zsh", "fish"]
    # A value flag's value ("job", a node here) is not mistaken for a command...
    assert sorted(_complete(tmp_path, "rnx", "--node", "job", "ru")) == ["run", "runtime"]
    # ...nor a switch's next word for its value.
    assert _complete(tmp_path, "rnx", "--json", "job", "ru") == ["run"]
    # After `--` the words are the job's: rnx offers nothing.
    assert _complete(tmp_path, "rnx", "run", "--", "l") == []


@needs_bash
def test_bash_completes_node_names_from_the_config(tmp_path: Path) -> None:
    _shim(tmp_path)
    config = write_config(tmp_path / "cfg.yml", "127.0.0.1:1")
    text = config.read_text().replace("  default:", "  default:", 1)
    body = text.split("\n", 1)[1]
    config.write_text("nodes:\n" + body + body.replace("  default:", "  gpu-box:", 1))
    assert _complete(tmp_path, "rnx", "--config", str(config), "--node", "") == [
        "default",
        "gpu-box",
    ]
    assert _complete(tmp_path, "rnx", "--config", str(config), "run", "--node", "g") == ["gpu-box"]
    # No config at all: nothing offered, nothing printed.
    assert _complete(tmp_path, "rnx", "--node", "") == []


@needs_bash
def test_bash_completes_job_ids_from_the_node(rnx: Rnx, tmp_path: Path) -> None:
    rnx.service.jobs["4f2a"] = _job("4f2a", "build")
    rnx.service.jobs["9c1b"] = _job("9c1b", "")
    _shim(tmp_path, insecure=True)
    config = str(rnx.config)
    assert _complete(tmp_path, "rnx", "--config", config, "status", "") == ["4f2a", "9c1b", "build"]
    assert _complete(tmp_path, "rnx", "--config", config, "job", "stop", "4") == ["4f2a"]
    assert _complete(tmp_path, "rnx", "--config", config, "list", "") == []  # takes no job


# --- rnx __complete ---------------------------------------------------------


def test_job_words_are_ids_then_distinct_names() -> None:
    from joblet.api import joblet_pb2 as pb

    jobs = [pb.Job(uuid="b", name="web"), pb.Job(uuid="a", name="web"), pb.Job(uuid="c")]
    assert job_words(jobs) == ["b", "a", "c", "web"]


def test_complete_jobs_lists_the_nodes_jobs(rnx: Rnx) -> None:
    rnx.service.jobs["4f2a"] = _job("4f2a", "build")
    code, out, err = rnx("__complete", "jobs")
    assert (code, err) == (0, "")
    assert out.split() == ["4f2a", "build"]


def test_complete_words_drops_names_a_shell_would_split(rnx: Rnx) -> None:
    rnx.service.jobs["4f2a"] = _job("4f2a", "two words")
    rnx.service.jobs["5e3b"] = _job("5e3b", "bell\x07")
    code, out, err = rnx("__complete", "jobs")
    assert (code, out.split(), err) == (0, ["4f2a", "5e3b"], "")


def test_complete_jobs_offline_is_quick_and_silent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_config(tmp_path / "cfg.yml", f"127.0.0.1:{port}")
    started = time.monotonic()
    code = main(["--config", str(config), "__complete", "jobs"])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert (code, out, err) == (0, "", "")
    assert elapsed < 8, elapsed  # the 1 s connect limit, with room for a loaded machine
    assert main(["--config", str(tmp_path / "missing.yml"), "__complete", "nodes"]) == 0
    assert capsys.readouterr() == ("", "")


# --- zsh and fish, for real --------------------------------------------------

ZSH = shutil.which("zsh")
FISH = shutil.which("fish")
# The completion system's builtins, reduced to printing what would be offered
# (compadd filters by the typed prefix itself; the script's part is the list).
ZSH_COMPSYS = """
compdef() { :; }
compadd() { [[ $1 == -a ]] && print -l -- ${(P)2}; }
_files() { print FILES; }
"""


def _zsh_offers(tmp_path: Path, *words: str) -> list[str]:
    assert ZSH is not None
    script = tmp_path / "_rnx"
    script.write_text(zsh_script(command_tree()))
    line = " ".join(f"'{w}'" for w in words)
    program = f"{ZSH_COMPSYS}source {script}\nwords=({line}); CURRENT={len(words)}\n_rnx\n"
    done = subprocess.run(
        [ZSH, "-f", "-c", program],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}", "HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.split()


@pytest.mark.skipif(ZSH is None, reason="zsh is not installed")
def test_zsh_offers_commands_flags_choices_and_jobs(rnx: Rnx, tmp_path: Path) -> None:
    assert "job" in _zsh_offers(tmp_path, "rnx", "jo")
    assert "delete-all" in _zsh_offers(tmp_path, "rnx", "job", "")
    assert "--limit" in _zsh_offers(tmp_path, "rnx", "ps", "--li")  # an alias
    assert _zsh_offers(tmp_path, "rnx", "log", "--stream", "") == ["stdout", "stderr"]
    assert "delete-all" not in _zsh_offers(tmp_path, "rnx", "--node", "job", "")
    assert _zsh_offers(tmp_path, "rnx", "run", "--", "") == []
    rnx.service.jobs["4f2a"] = _job("4f2a", "build")
    _shim(tmp_path, insecure=True)
    assert _zsh_offers(tmp_path, "rnx", "--config", str(rnx.config), "status", "") == [
        "4f2a",
        "build",
    ]
    assert _zsh_offers(tmp_path, "rnx", "--config", str(rnx.config), "--node", "") == ["default"]


def _fish_offers(tmp_path: Path, line: str) -> list[str]:
    assert FISH is not None
    script = tmp_path / "rnx.fish"
    script.write_text(fish_script(command_tree()))
    done = subprocess.run(
        [FISH, "--no-config", "-c", f"source {script}; complete -C {shlex.quote(line)}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}", "HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stderr) == (0, "")
    return [row.split("\t")[0] for row in done.stdout.splitlines()]


@pytest.mark.skipif(FISH is None, reason="fish is not installed")
def test_fish_offers_commands_flags_choices_and_jobs(rnx: Rnx, tmp_path: Path) -> None:
    assert _fish_offers(tmp_path, "rnx jo") == ["job"]
    assert _fish_offers(tmp_path, "rnx job l") == ["list", "log", "logs", "ls"]
    assert _fish_offers(tmp_path, "rnx ps --li") == ["--limit"]
    assert _fish_offers(tmp_path, "rnx log --stream ") == ["stderr", "stdout"]
    rnx.service.jobs["4f2a"] = _job("4f2a", "build")
    _shim(tmp_path, insecure=True)
    offered = _fish_offers(tmp_path, f"rnx --config {rnx.config} job stop ")
    assert {"4f2a", "build"} <= set(offered)
    assert _fish_offers(tmp_path, f"rnx --config {rnx.config} --node ") == ["default"]


class _SilentService(FakeJobService):
    """Accepts ListJobs and never answers it (until released)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def ListJobs(self, request: pb.EmptyRequest, context: grpc.ServicerContext) -> pb.Jobs:
        self.release.wait(60)
        return pb.Jobs()


def test_complete_jobs_gives_up_on_a_node_that_never_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from joblet.cli import complete_words

    monkeypatch.setattr(complete_words, "LIST_DEADLINE_S", 0.5)
    silent = _SilentService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_JobServiceServicer_to_server(silent, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = write_config(tmp_path / "cfg.yml", f"127.0.0.1:{port}")
    started = time.monotonic()
    try:
        code = main(
            ["--config", str(config), "__complete", "jobs"], channel_factory=insecure_channel
        )
    finally:
        silent.release.set()
        server.stop(grace=None)
    assert (code, *capsys.readouterr()) == (0, "", "")
    assert time.monotonic() - started < 10  # not rnx's 30 s for a listing
