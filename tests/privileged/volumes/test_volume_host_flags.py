"""A volume's own mount on the host is nosuid,nodev: a job that plants a
setuid binary or a device node in a volume leaves nothing the host honours.
A job's bind of the volume takes these flags from it too."""

from __future__ import annotations

import os

import pytest

from joblet.volumes.manager import VolumeManager

pytestmark = [pytest.mark.privileged, pytest.mark.asyncio]


@pytest.mark.parametrize(("kind", "size"), [("filesystem", "16MiB"), ("memory", "8MiB")])
async def test_the_host_mount_is_nosuid_nodev(manager: VolumeManager, kind: str, size: str) -> None:
    info = await manager.create(f"flags-{kind}", size, kind)
    try:
        flags = os.statvfs(info.path).f_flag
        assert flags & os.ST_NOSUID, f"{kind} volume mounted without nosuid"
        assert flags & os.ST_NODEV, f"{kind} volume mounted without nodev"
    finally:
        await manager.remove(f"flags-{kind}")
