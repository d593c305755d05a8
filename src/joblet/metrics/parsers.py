"""Pure parsers of the /proc files the sampler reads, beyond the cgroup file
formats that `joblet.resources.stats` already parses.

Formats: proc(5) for /proc/<pid>/net/dev, /proc/<pid>/status and
/proc/<pid>/limits; cgroup-v1 blkio.txt for the io_serviced files (same
"MAJ:MIN Op N" lines as io_service_bytes, parsed by `parse_blkio_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

# /proc/net/dev receive columns, then transmit columns (proc(5)).
_RX = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_TX_OFFSET = len(_RX)


@dataclass(frozen=True)
class NetCounters:
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class ProcStatus:
    state: str  # one letter: R, S, D, T, t, Z, X, I
    threads: int


def parse_net_dev(text: str) -> dict[str, NetCounters]:
    """/proc/<pid>/net/dev to {interface: counters}; the two header lines are skipped."""
    out: dict[str, NetCounters] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < 16 or not fields[0].isdigit():
            continue
        n = [int(f) for f in fields[:16]]
        out[name.strip()] = NetCounters(
            rx_bytes=n[0],
            rx_packets=n[1],
            rx_errors=n[2],
            rx_dropped=n[3],
            tx_bytes=n[_TX_OFFSET],
            tx_packets=n[_TX_OFFSET + 1],
            tx_errors=n[_TX_OFFSET + 2],
            tx_dropped=n[_TX_OFFSET + 3],
        )
    return out


def parse_proc_status(text: str) -> ProcStatus:
    """The State letter and Threads count of /proc/<pid>/status."""
    state, threads = "", 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "State":
            state = value.strip()[:1]
        elif key == "Threads":
            threads = int(value.strip() or 0)
            break  # State comes before Threads; the rest is not needed
    return ProcStatus(state, threads)


def parse_proc_stat(text: str) -> ProcStatus:
    """The state letter and thread count of /proc/<pid>/stat (cheaper for
    the kernel to write than status). The command name, in parentheses, may
    hold spaces and parentheses of its own: the fields start after the last ')'."""
    fields = text.rpartition(")")[2].split()
    if len(fields) < 18:
        return ProcStatus("", 0)
    return ProcStatus(fields[0], int(fields[17]) if fields[17].isdigit() else 0)


def parse_max_open_files(text: str) -> int:
    """The soft 'Max open files' limit of /proc/<pid>/limits; 0 when unlimited or absent."""
    for line in text.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files") :].split()[0]
            return int(soft) if soft.isdigit() else 0
    return 0


def state_counts(states: list[str]) -> dict[str, int]:
    """Group /proc state letters as the API reports them: running, sleeping,
    stopped, zombie. D (disk sleep) and I (idle kernel thread) count as sleeping."""
    groups = {"R": "running", "S": "sleeping", "D": "sleeping", "I": "sleeping"}
    groups |= {"T": "stopped", "t": "stopped", "Z": "zombie", "X": "zombie"}
    out = dict.fromkeys(("running", "sleeping", "stopped", "zombie"), 0)
    for state in states:
        group = groups.get(state)
        if group is not None:
            out[group] += 1
    return out
