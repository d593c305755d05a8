"""Where a job may be placed, which streams a node serves, which requests
stay on the node that received them, and the placement's config keys."""

from __future__ import annotations

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.cluster.config import parse_cluster_config
from joblet.cluster.placement import Place, gpu_streams, parse_place, streams_for
from joblet.daemon.placement import placeable


@pytest.mark.parametrize(
    ("text", "stream"),
    [("", "any"), ("node=abc", "node:abc"), ("label=zone=a", "label:zone=a"),
     ("  node=n-1 ", "node:n-1")],
)  # fmt: skip
def test_a_place_names_its_stream(text: str, stream: str) -> None:
    assert parse_place(text).stream == stream


@pytest.mark.parametrize("text", ["node", "node=", "node=a=b", "label=zone", "label==a", "x=y"])
def test_a_bad_place_says_what_is_wanted(text: str) -> None:
    with pytest.raises(ValueError, match="node=ID or label=KEY=VALUE"):
        parse_place(text)


def test_a_node_serves_any_its_own_and_its_labels() -> None:
    assert streams_for("n1", {"zone": "a", "gpu": "yes"}) == [
        "any", "node:n1", "label:gpu=yes", "label:zone=a",
    ]  # fmt: skip
    assert Place(label=("zone", "a")).stream in streams_for("n1", {"zone": "a"})


def test_what_lives_on_the_receiving_node_stays_there() -> None:
    assert placeable(pb.RunJobRequest(command="true"), 1000) == ""
    assert "session" in placeable(pb.RunJobRequest(command="true", uploadSession="s"), 1000)
    assert "stdin" in placeable(pb.RunJobRequest(command="cat", stdin=True), 1000)
    assert placeable(pb.RunJobRequest(command="true", gpu_count=1), 1000) == ""
    assert "names its GPUs" in placeable(pb.RunJobRequest(command="t", gpu_ids=["0"]), 1000)
    assert "GPU memory" in placeable(
        pb.RunJobRequest(command="t", gpu_count=1, gpu_memory_mb=512), 1000
    )
    assert "scheduled" in placeable(pb.RunJobRequest(command="true", schedule="5m"), 1000)
    big = pb.RunJobRequest(command="true", uploads=[pb.FileUpload(path="f", content=b"x" * 2000)])
    assert "maxUploadBytes" in placeable(big, 1000)
    assert placeable(big, 10_000) == ""


def test_placement_keys() -> None:
    config = parse_cluster_config({"name": "c", "placement": True, "maxUploadBytes": "1MiB"})
    assert config.placement and config.max_upload_bytes == 1024 * 1024
    assert parse_cluster_config({"name": "c"}).max_upload_bytes == 8 * 1024 * 1024
    with pytest.raises(ValueError, match=r"needs cluster\.name"):
        parse_cluster_config({"placement": True})
    with pytest.raises(ValueError, match="true or false"):
        parse_cluster_config({"name": "c", "placement": "yes"})
    with pytest.raises(ValueError, match="maxUploadBytes"):
        parse_cluster_config({"name": "c", "maxUploadBytes": 0})


def test_a_node_reads_the_gpu_streams_it_has_free_gpus_for() -> None:
    assert Place(gpus=2).stream == "gpu:2"
    assert Place(gpus=2).anywhere and not Place(node="n", gpus=2).anywhere
    assert gpu_streams(free=3, total=4) == ["gpu:3", "gpu:2", "gpu:1"]
    assert gpu_streams(free=9, total=2) == ["gpu:2", "gpu:1"]
    assert gpu_streams(free=0, total=4) == [] == gpu_streams(free=0, total=0)
