"""A LaunchSpec crosses to the launcher as a JSON object inside the request
frame: encoded without a detour through text, decoded back to an equal spec
with every tuple field a tuple again."""

from __future__ import annotations

import json

from joblet.isolation.launcher import _parse_spec
from joblet.isolation.spec import LaunchSpec


def full_spec() -> LaunchSpec:
    return LaunchSpec(
        job_id="j1",
        argv=("sh", "-c", "echo hi"),
        env={"PATH": "/usr/bin", "JOB_ID": "j1"},
        hostname="j1",
        job_dir="/r/jobs/j1",
        workspace="/r/ws/j1",
        log_path="/r/jobs/j1/output.log",
        cgroup_procs=("/sys/fs/cgroup/cpu/p/job-j1/cgroup.procs",),
        allowed_mounts=("/bin", "/usr"),
        extra_hosts={"db": "10.1.0.2"},
        volume_mounts=(("/r/volumes/v/mnt", "v", True),),
        network={"mode": "bridge", "addresses": ["10.1.0.3/16"], "nested": {"k": [1, 2]}},
        max_open_files=1024,
        runtime_tree="/r/runtimes/py",
        runtime_mounts=(("lib", "/usr/local/lib"),),
        devices=(("/dev/nvidia0", "nvidia0"),),
        gpu_bus_ids=("0000:01:00.0",),
        driver_files=(("/usr/lib/libcuda.so.1", "/usr/lib/libcuda.so.1"),),
    )


def test_a_spec_survives_the_request_frame_and_equals_the_text_form() -> None:
    spec = full_spec()
    frame = json.dumps({"op": "launch", "spec": spec.to_dict()})
    raw = json.loads(frame)["spec"]
    assert _parse_spec(raw) == spec
    assert LaunchSpec.from_json(spec.to_json()) == spec
    assert _parse_spec(spec.to_json()) == spec
    assert json.loads(spec.to_json()) == raw


def test_to_dict_leaves_the_spec_alone() -> None:
    spec = full_spec()
    data = spec.to_dict()
    json.dumps(data)
    LaunchSpec.from_dict(json.loads(json.dumps(data)))
    assert spec == full_spec()
