"""What a launch reads of the host, kept between launches: the allowed
mounts' kinds and the host's resolv.conf. A burst of launches would otherwise
stat the same two dozen paths and read the same file for every job.

The allowed paths are looked at again after PROBE_TTL_S (a path that changed
meanwhile is caught at mount time anyway: the mount program refuses a target
of another kind, see rootfs); resolv.conf is read again when its stat says it
changed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from joblet.isolation import rootfs

PROBE_TTL_S = 1.0


class HostView:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._probed: dict[tuple[str, ...], tuple[float, dict[str, rootfs.HostEntry]]] = {}
        self._files: dict[str, tuple[tuple[int, int, int], str]] = {}

    def allowed(self, paths: tuple[str, ...]) -> dict[str, rootfs.HostEntry]:
        now = self._clock()
        kept = self._probed.get(paths)
        if kept is not None and now - kept[0] < PROBE_TTL_S:
            return kept[1]
        found = rootfs.probe_host(paths)
        if len(self._probed) > 64:  # a few distinct sets in practice
            self._probed.clear()
        self._probed[paths] = (now, found)
        return found

    def text(self, path: str) -> str:
        """The file's text ("" when it cannot be read), read again once its
        inode, size or modification time changed."""
        try:
            st = os.stat(path)
        except OSError:
            self._files.pop(path, None)
            return ""
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        kept = self._files.get(path)
        if kept is not None and kept[0] == key:
            return kept[1]
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return ""
        self._files[path] = (key, text)
        return text
