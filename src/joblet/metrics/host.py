"""Host metrics with psutil: CPU, memory, disks (with inodes), network
interfaces, disk IO, processes. `HostCollector` keeps the previous counters
so that rates (network, disk IO) cover the time since its last reading.

Blocking (psutil reads /proc): the servicer calls it in a worker thread.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil

from joblet.api import joblet_pb2 as pb
from joblet.metrics.host_processes import process_metrics

METRIC_TYPES = frozenset({"cpu", "memory", "disk", "network", "io", "process"})
# Pseudo and container filesystems say nothing about the host's disks.
_SKIP_FS = frozenset({"squashfs", "overlay", "tmpfs", "devtmpfs", "nsfs", "proc", "sysfs"})


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def server_version() -> pb.ServerVersionInfo:
    """go_version stays empty (no Go here); the Python version goes in platform."""
    try:
        version = metadata.version("joblet")
    except metadata.PackageNotFoundError:
        version = "unknown"
    py = platform.python_version()
    return pb.ServerVersionInfo(
        version=version, component="joblet", platform=f"linux/{platform.machine()} python {py}"
    )


def host_info(node_id: str) -> pb.HostInfo:
    uname, boot = platform.uname(), psutil.boot_time()
    os_release = _os_release()
    distro = os_release.get("ID", "")
    addresses, macs = _addresses()
    return pb.HostInfo(
        hostname=socket.gethostname(), os=sys.platform,
        platform=distro, platformFamily=os_release.get("ID_LIKE", distro),
        platformVersion=os_release.get("VERSION_ID", ""), kernelVersion=uname.release,
        kernelArch=uname.machine, architecture=uname.machine,
        cpuCount=psutil.cpu_count() or 0, totalMemory=psutil.virtual_memory().total,
        bootTime=iso(boot), uptime=int(time.time() - boot), nodeId=node_id,
        serverIPs=addresses, macAddresses=macs,
    )  # fmt: skip


def _os_release() -> dict[str, str]:
    try:
        return platform.freedesktop_os_release()
    except OSError:
        return {}


def _addresses() -> tuple[list[str], list[str]]:
    ips: list[str] = []
    macs: list[str] = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                ips.append(a.address.split("%")[0])
            elif a.family == psutil.AF_LINK and a.address and a.address != "00:00:00:00:00:00":
                macs.append(a.address)
    return ips, sorted(set(macs))


def cpu_metrics() -> pb.CPUMetrics:
    times = psutil.cpu_times_percent(interval=None)  # since the previous call
    per_core = psutil.cpu_percent(interval=None, percpu=True)
    return pb.CPUMetrics(
        cores=psutil.cpu_count() or 0,
        usagePercent=sum(per_core) / len(per_core) if per_core else 0.0,
        userTime=times.user, systemTime=times.system, idleTime=times.idle,
        ioWaitTime=getattr(times, "iowait", 0.0), stealTime=getattr(times, "steal", 0.0),
        loadAverage=list(os.getloadavg()), perCoreUsage=per_core,
    )  # fmt: skip


def memory_metrics() -> pb.MemoryMetrics:
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    return pb.MemoryMetrics(
        totalBytes=vm.total, usedBytes=vm.used, freeBytes=vm.free,
        availableBytes=vm.available, usagePercent=vm.percent,
        cachedBytes=getattr(vm, "cached", 0), bufferedBytes=getattr(vm, "buffers", 0),
        swapTotal=swap.total, swapUsed=swap.used, swapFree=swap.free,
    )  # fmt: skip


def disk_metrics() -> list[pb.DiskMetrics]:
    out: list[pb.DiskMetrics] = []
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        if part.fstype in _SKIP_FS or part.device in seen:
            continue
        seen.add(part.device)
        try:
            st = os.statvfs(part.mountpoint)
        except OSError:
            continue
        out.append(disk_from_statvfs(part.device, part.mountpoint, part.fstype, st))
    return out


def disk_from_statvfs(
    device: str, mount: str, fstype: str, st: os.statvfs_result
) -> pb.DiskMetrics:
    """Pure: df's arithmetic (used = total - free; percent of what users may use)."""
    total, free, avail = (
        st.f_blocks * st.f_frsize,
        st.f_bfree * st.f_frsize,
        st.f_bavail * st.f_frsize,
    )
    used = total - free
    inodes_used = st.f_files - st.f_ffree
    return pb.DiskMetrics(
        device=device, mountPoint=mount, filesystem=fstype, totalBytes=total,
        usedBytes=used, freeBytes=avail, usagePercent=_pct(used, used + avail),
        inodesTotal=st.f_files, inodesUsed=inodes_used, inodesFree=st.f_ffree,
        inodesUsagePercent=_pct(inodes_used, st.f_files),
    )  # fmt: skip


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


class HostCollector:
    """Host status and metrics; thread-safe (one reading at a time)."""

    def __init__(self, node_id: str, cloud: pb.CloudInfo | None = None) -> None:
        self.node_id = node_id
        self.cloud = cloud or pb.CloudInfo()
        self._lock = threading.Lock()
        self._prev: dict[str, tuple[float, Any]] = {}
        psutil.cpu_percent(interval=None, percpu=True)  # prime: the next call has a window
        psutil.cpu_times_percent(interval=None)

    def status(self) -> pb.SystemStatusRes:
        m = self.metrics(METRIC_TYPES)
        return pb.SystemStatusRes(
            timestamp=m.timestamp, available=True, host=m.host, cpu=m.cpu, memory=m.memory,
            disks=m.disks, networks=m.networks, io=m.io, processes=m.processes,
            cloud=self.cloud, server_version=server_version(),
        )  # fmt: skip

    def metrics(self, types: Iterable[str]) -> pb.SystemMetricsRes:
        wanted = frozenset(types) or METRIC_TYPES
        with self._lock:
            res = pb.SystemMetricsRes(timestamp=iso(time.time()), host=host_info(self.node_id))
            res.cloud.CopyFrom(self.cloud)
            if "cpu" in wanted:
                res.cpu.CopyFrom(cpu_metrics())
            if "memory" in wanted:
                res.memory.CopyFrom(memory_metrics())
            if "disk" in wanted:
                res.disks.extend(disk_metrics())
            if "network" in wanted:
                res.networks.extend(self._networks())
            if "io" in wanted:
                res.io.CopyFrom(self._io())
            if "process" in wanted:
                res.processes.CopyFrom(process_metrics())
            return res

    def _since(self, key: str, now: Any) -> tuple[float, Any]:
        """Seconds since the previous reading of `key`, and that reading (or now)."""
        t = time.monotonic()
        before_t, before = self._prev.get(key, (t, now))
        self._prev[key] = (t, now)
        return t - before_t, before

    def _networks(self) -> list[pb.NetworkMetrics]:
        counters = psutil.net_io_counters(pernic=True)
        seconds, before = self._since("net", counters)
        addrs = psutil.net_if_addrs()
        out = []
        for name, c in sorted(counters.items()):
            p = before.get(name, c)
            msg = pb.NetworkMetrics(
                interface=name, bytesReceived=c.bytes_recv, bytesSent=c.bytes_sent,
                packetsReceived=c.packets_recv, packetsSent=c.packets_sent,
                errorsIn=c.errin, errorsOut=c.errout, dropsIn=c.dropin, dropsOut=c.dropout,
                receiveRate=_rate(c.bytes_recv, p.bytes_recv, seconds),
                transmitRate=_rate(c.bytes_sent, p.bytes_sent, seconds),
            )  # fmt: skip
            for a in addrs.get(name, ()):
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    msg.ipAddresses.append(a.address.split("%")[0])
                elif a.family == psutil.AF_LINK:
                    msg.macAddress = a.address
            out.append(msg)
        return out

    def _io(self) -> pb.IOMetrics:
        disks = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
        seconds, before = self._since("io", disks)
        res = pb.IOMetrics()
        for name, d in sorted(disks.items()):
            p = before.get(name, d)
            res.totalReads += d.read_count
            res.totalWrites += d.write_count
            res.readBytes += d.read_bytes
            res.writeBytes += d.write_bytes
            res.readRate += _rate(d.read_bytes, p.read_bytes, seconds)
            res.writeRate += _rate(d.write_bytes, p.write_bytes, seconds)
            busy_ms = getattr(d, "busy_time", 0) - getattr(p, "busy_time", 0)
            res.diskIO.append(
                pb.DiskIOMetrics(
                    device=name, readsCompleted=d.read_count, writesCompleted=d.write_count,
                    readBytes=d.read_bytes, writeBytes=d.write_bytes, readTime=d.read_time,
                    writeTime=d.write_time, ioTime=getattr(d, "busy_time", 0),
                    utilization=min(100.0, _pct(busy_ms, seconds * 1000)),
                )
            )  # fmt: skip
        return res


def _rate(now: int, before: int, seconds: float) -> float:
    return (now - before) / seconds if seconds > 0 and now >= before else 0.0
