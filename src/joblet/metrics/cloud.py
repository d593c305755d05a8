"""Cloud provider and hypervisor detection.

DMI strings (/sys/class/dmi/id) are read always: local files, no network.
Metadata endpoints are asked only when `metrics.cloudMetadata` is true, with
short timeouts, because on a host outside a cloud 169.254.169.254 either
does not answer or (worse) belongs to someone else.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from joblet.api import joblet_pb2 as pb

DMI_FIELDS = ("sys_vendor", "product_name", "bios_vendor", "chassis_asset_tag", "board_vendor")
METADATA_TIMEOUT_S = 0.5
_AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"  # every Azure VM carries it

# (substring of the joined DMI strings, provider)
_PROVIDERS = (
    ("amazon ec2", "aws"), ("amazon", "aws"), ("google", "gcp"),
    ("digitalocean", "digitalocean"), ("hetzner", "hetzner"), ("alibaba", "alibaba"),
    ("oraclecloud", "oracle"), ("openstack", "openstack"), ("linode", "linode"),
)  # fmt: skip
_HYPERVISORS = (
    ("kvm", "kvm"), ("qemu", "qemu"), ("vmware", "vmware"), ("virtualbox", "virtualbox"),
    ("xen", "xen"), ("hvm domu", "xen"), ("microsoft corporation", "hyper-v"),
    ("amazon ec2", "nitro"), ("google", "kvm"), ("firecracker", "firecracker"),
)  # fmt: skip


def read_dmi(dmi_dir: Path = Path("/sys/class/dmi/id")) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in DMI_FIELDS:
        try:
            out[name] = (dmi_dir / name).read_text(errors="replace").strip()
        except OSError:
            continue
    return out


def detect_from_dmi(dmi: Mapping[str, str], hypervisor_type: str = "") -> pb.CloudInfo:
    """Pure: provider and hypervisor from DMI strings (and /sys/hypervisor/type)."""
    text = " ".join(dmi.values()).lower()
    provider = next((name for needle, name in _PROVIDERS if needle in text), "")
    if dmi.get("chassis_asset_tag") == _AZURE_ASSET_TAG:
        provider = "azure"
    hypervisor = next((name for needle, name in _HYPERVISORS if needle in text), "")
    return pb.CloudInfo(
        provider=provider,
        hypervisorType=hypervisor or hypervisor_type.strip(),
        metadata={f"dmi.{k}": v for k, v in dmi.items() if v},
    )


def detect_cloud(
    *,
    ask_metadata: bool,
    dmi_dir: Path = Path("/sys/class/dmi/id"),
    hypervisor_file: Path = Path("/sys/hypervisor/type"),
    fetch: Callable[[urllib.request.Request], str] | None = None,
) -> pb.CloudInfo:
    try:
        hypervisor = hypervisor_file.read_text()
    except OSError:
        hypervisor = ""
    info = detect_from_dmi(read_dmi(dmi_dir), hypervisor)
    if ask_metadata and info.provider in ("aws", "gcp", "azure"):
        _add_metadata(info, fetch or _fetch)
    return info


def _fetch(request: urllib.request.Request) -> str:
    with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT_S) as res:
        return str(res.read(65536).decode("utf-8", "replace"))


def _add_metadata(info: pb.CloudInfo, fetch: Callable[[urllib.request.Request], str]) -> None:
    try:
        if info.provider == "aws":
            _aws(info, fetch)
        elif info.provider == "gcp":
            _gcp(info, fetch)
        else:
            _azure(info, fetch)
    except (OSError, ValueError, KeyError):
        info.metadata["metadata.error"] = "metadata endpoint did not answer"


def _aws(info: pb.CloudInfo, fetch: Callable[[urllib.request.Request], str]) -> None:
    base = "http://169.254.169.254/latest"
    token = fetch(
        urllib.request.Request(
            f"{base}/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
    )  # fmt: skip
    doc = json.loads(
        fetch(
            urllib.request.Request(
                f"{base}/dynamic/instance-identity/document",
                headers={"X-aws-ec2-metadata-token": token},
            )
        )
    )
    info.region, info.zone = doc["region"], doc["availabilityZone"]
    info.instanceID, info.instanceType = doc["instanceId"], doc["instanceType"]


def _gcp(info: pb.CloudInfo, fetch: Callable[[urllib.request.Request], str]) -> None:
    base = "http://metadata.google.internal/computeMetadata/v1/instance"
    headers = {"Metadata-Flavor": "Google"}

    def get(path: str) -> str:
        return fetch(urllib.request.Request(f"{base}/{path}", headers=headers)).rsplit("/", 1)[-1]

    info.zone, info.instanceID = get("zone"), get("id")
    info.instanceType = get("machine-type")
    info.region = info.zone.rsplit("-", 1)[0]


def _azure(info: pb.CloudInfo, fetch: Callable[[urllib.request.Request], str]) -> None:
    url = "http://169.254.169.254/metadata/instance/compute?api-version=2021-02-01"
    doc = json.loads(fetch(urllib.request.Request(url, headers={"Metadata": "true"})))
    info.region, info.zone = doc["location"], doc.get("zone", "")
    info.instanceID, info.instanceType = doc["vmId"], doc["vmSize"]
