"""Host process counts and the top processes by CPU and by memory (psutil).

psutil.process_iter caches Process objects between calls, so cpu_percent is
the share since the previous reading (0.0 for a process seen the first time).
"""

from __future__ import annotations

from datetime import UTC, datetime

import psutil

from joblet.api import joblet_pb2 as pb

TOP_N = 10
_ATTRS = [
    "pid", "ppid", "name", "cmdline", "cpu_percent", "memory_percent",
    "memory_info", "status", "create_time", "username", "num_threads",
]  # fmt: skip
_GROUPS = {
    psutil.STATUS_RUNNING: "running", psutil.STATUS_SLEEPING: "sleeping",
    psutil.STATUS_DISK_SLEEP: "sleeping", psutil.STATUS_IDLE: "sleeping",
    psutil.STATUS_STOPPED: "stopped", psutil.STATUS_TRACING_STOP: "stopped",
    psutil.STATUS_ZOMBIE: "zombie", psutil.STATUS_DEAD: "zombie",
}  # fmt: skip


def process_info(info: dict[str, object]) -> pb.ProcessInfo:
    """Pure: one psutil `as_dict` result to the wire (absent values: zero)."""
    mem = info.get("memory_info")
    cmdline = info.get("cmdline") or []
    created = info.get("create_time")
    return pb.ProcessInfo(
        pid=int(info.get("pid") or 0),  # type: ignore[call-overload]
        ppid=int(info.get("ppid") or 0),  # type: ignore[call-overload]
        name=str(info.get("name") or ""),
        command=" ".join(str(c) for c in cmdline) if isinstance(cmdline, list) else "",
        cpuPercent=float(info.get("cpu_percent") or 0.0),  # type: ignore[arg-type]
        memoryPercent=float(info.get("memory_percent") or 0.0),  # type: ignore[arg-type]
        memoryBytes=int(getattr(mem, "rss", 0)),
        status=str(info.get("status") or ""),
        startTime=(
            datetime.fromtimestamp(created, UTC).isoformat() if isinstance(created, float) else ""
        ),
        user=str(info.get("username") or ""),
    )


def process_metrics(top_n: int = TOP_N) -> pb.ProcessMetrics:
    infos = [p.info for p in psutil.process_iter(_ATTRS, ad_value=None)]
    res = pb.ProcessMetrics(totalProcesses=len(infos))
    counts = dict.fromkeys(("running", "sleeping", "stopped", "zombie"), 0)
    for info in infos:
        group = _GROUPS.get(str(info.get("status")))
        if group is not None:
            counts[group] += 1
        res.totalThreads += int(info.get("num_threads") or 0)
    res.runningProcesses, res.sleepingProcesses = counts["running"], counts["sleeping"]
    res.stoppedProcesses, res.zombieProcesses = counts["stopped"], counts["zombie"]
    by_cpu = sorted(infos, key=lambda i: float(i.get("cpu_percent") or 0.0), reverse=True)
    by_mem = sorted(infos, key=lambda i: int(getattr(i.get("memory_info"), "rss", 0)), reverse=True)
    res.topByCPU.extend(process_info(i) for i in by_cpu[:top_n])
    res.topByMemory.extend(process_info(i) for i in by_mem[:top_n])
    return res
