"""`joblet history export` / `import` between two roots on disk, and the CLI's
answers to bad input."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from joblet.errors import AlreadyExists, InvalidArgument, NotFound
from joblet.persist.archive.transfer import export_job, import_job
from joblet.persist.config import PersistConfig
from joblet.persist.store import HistoryStore, LogFilter, Marker, Record, read_logs


def _fill(root: Path, job: str) -> tuple[list[Record], list[Record]]:
    logs = HistoryStore(root / "logs", segment_bytes=4096, level=1)
    metrics = HistoryStore(root / "metrics", segment_bytes=4096, level=1)
    lines = [Record(1, i + 1, b"line %d\n" % i) for i in range(2000)]
    samples = [Record(1, i + 1, b'{"cpu": %d}' % i) for i in range(50)]
    for n in range(0, 2000, 100):
        logs.append(job, lines[n : n + 100], Marker("s", n + 1))
    metrics.append(job, samples, Marker("s", 1))
    logs.seal(job)
    metrics.seal(job)
    return lines, samples


def _read(root: Path, kind: str, job: str) -> list[Record]:
    snapshot = HistoryStore(root / kind, 4096, 1).snapshot(job)
    assert snapshot is not None
    return [r for chunk in read_logs(snapshot, LogFilter()) for r in chunk]


def test_export_then_import_on_another_root_gives_the_same_history(tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    lines, samples = _fill(tmp_path / "a", job)
    out = export_job(PersistConfig.for_root(tmp_path / "a"), job, tmp_path / "export")
    assert (out / "manifest.json").is_file()
    assert len(list((out / "logs").glob("seg-*.zst"))) > 1
    assert import_job(PersistConfig.for_root(tmp_path / "b"), out) == job
    assert _read(tmp_path / "b", "logs", job) == lines
    assert _read(tmp_path / "b", "metrics", job) == samples
    with pytest.raises(AlreadyExists):
        import_job(PersistConfig.for_root(tmp_path / "b"), out)


def test_a_damaged_export_is_refused_and_nothing_is_imported(tmp_path: Path) -> None:
    job = str(uuid.uuid4())
    _fill(tmp_path / "a", job)
    out = export_job(PersistConfig.for_root(tmp_path / "a"), job, tmp_path / "export")
    segment = sorted((out / "logs").glob("seg-*.zst"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(InvalidArgument, match="checksum"):
        import_job(PersistConfig.for_root(tmp_path / "b"), out)
    assert not (tmp_path / "b" / "logs" / job).exists()


def test_export_of_an_unknown_job_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no history"):
        export_job(PersistConfig.for_root(tmp_path), str(uuid.uuid4()), tmp_path / "x")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "../etc", "OUT"], "invalid job id"),
        (["export", str(uuid.uuid4()), "OUT"], "no history for job"),
        (["import", "NOWHERE"], "holds no manifest.json"),
    ],
)
def test_cli_answers_bad_input_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    config = tmp_path / "c.yml"
    config.write_text(f"joblet: {{root: {tmp_path / 'root'}}}\n")
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("NOWHERE", str(tmp_path)) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", "history", *argv, "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("joblet: error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
