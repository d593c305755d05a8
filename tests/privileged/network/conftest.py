from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(autouse=True)
def _needs_root_and_nft() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, veths, nftables")
    if shutil.which("nft") is None:
        pytest.skip("needs nft (apt-get install nftables)")
