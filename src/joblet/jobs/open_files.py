"""How many files each process of a job may open, so that one job cannot
fill the host's file table.

RLIMIT_NOFILE counts per process, and a job may have up to
`cgroup.defaults.maxPids` of them: 1024 processes at 4096 files each are 4.2
million open files, more than the whole table of a 24 GB host
(fs.file-max, about 2.4 million), and a full table is ENFILE for every
process on the host without CAP_SYS_ADMIN. A job's struct files are charged to
its memory cgroup, but a quarter of RAM holds millions of them. So the hard
limit per process is also capped at a share of fs.file-max divided among the
job's processes, as the memory default is a share of RAM.
"""

from __future__ import annotations

FILE_TABLE_SHARE = 4  # one job holds at most 1/4 of the host's file table
MIN_OPEN_FILES = 64  # below this, ordinary programs fail


def open_files_cap(max_open_files: int, max_pids: int, file_max: int) -> int:
    """The RLIMIT_NOFILE hard limit for each process of a job: at most
    `max_open_files`, and `max_pids` processes together at most
    `file_max / FILE_TABLE_SHARE` (never below MIN_OPEN_FILES). 0 (the
    launcher's own limits) and unknown counts (<= 0) are left as they are."""
    if max_open_files <= 0 or max_pids <= 0 or file_max <= 0:
        return max_open_files
    share = file_max // (FILE_TABLE_SHARE * max_pids)
    return max(min(max_open_files, MIN_OPEN_FILES), min(max_open_files, share))


def read_file_max(procfs: str = "/proc") -> int:
    """fs.file-max (proc(5)); 0 when it cannot be read."""
    try:
        with open(f"{procfs}/sys/fs/file-max") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0
