"""Unknown keys in joblet-config.yml: all of them found, at any depth, each
with its path and a did-you-mean; every key the code reads or documents known."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from joblet.cluster import config as cluster_config
from joblet.cluster.config import parse_cluster_config
from joblet.config import loader
from joblet.config.keys import Schema, suggest, unknown_keys
from joblet.config.loader import FILE_KEYS, key_problems, read_config_file
from joblet.errors import ConfigError
from joblet.gpu import config as gpu_config
from joblet.gpu.config import parse_gpu_config
from joblet.metrics import config as metrics_config
from joblet.metrics.config import parse_metrics_config
from joblet.network import config as network_config
from joblet.network.config import parse_network_config
from joblet.persist import config as persist_config
from joblet.persist.config import load_persist_config
from joblet.runtimes import config as runtime_config
from joblet.runtimes.config import parse_runtime_config
from joblet.security.audit_config import parse_audit_config
from joblet.state import config as state_config
from joblet.state.config import load_state_config
from joblet.ui.config import parse_ui_config
from joblet.volumes import config as volumes_config
from joblet.volumes.config import load_volumes_config, parse_volumes_config

SCHEMA: Schema = {
    "joblet": {"root": None, "maxConcurrentJobs": None},
    "state": {"redis": {"host": None, "tls": {"caFile": None}}},
}

# Every key the config modules document, with a value of the right shape.
EVERY_KEY: dict[str, Any] = {
    "server": {"address": "127.0.0.1", "port": 50051, "nodeId": ""},
    "joblet": {
        "root": "/tmp/joblet",
        "maxConcurrentJobs": 2,
        "jobTimeout": "0s",
        "stopGracePeriod": "5s",
        "maxUploadSize": "256MB",
        "maxLogSize": "4GB",
        "runAsUser": None,
        "runAsGroup": None,
        "allowedUsers": ["nobody", 1000],
        "jobRetention": {"maxAge": "7d", "maxJobs": 10000, "interval": "1m"},
        "priorityAging": "1m",
        "preemption": True,
        "maxRequeues": 3,
    },
    "roles": {"maxPriority": {"admin": 1000, "viewer": 0}},
    "cluster": {
        "name": "prod",
        "advertise": "10.0.0.5:50051",
        "labels": {"zone": "a"},
        "leaseTtl": "10s",
        "renewEvery": "3s",
        "placement": True,
        "maxUploadBytes": "8MiB",
    },
    "ui": {
        "enabled": True,
        "listen": "127.0.0.1:5175",
        "tls": False,
        "hosts": ["jobs.example"],
        "user": "nobody",
        "clients": "/tmp/ui-clients.yml",
        "publicUrl": "http://jobs.example:5175",
    },
    "security": {"serverCert": "pem", "serverKey": "pem", "caCert": "pem"},
    "filesystem": {"allowedMounts": ["/usr"], "tmpSize": "256MB"},
    "cgroup": {
        "mountRoot": "/sys/fs/cgroup",
        "parent": "joblet",
        "defaults": {"maxCpu": 0, "maxMemory": 0, "maxIobps": 0, "maxPids": 1024},
    },
    "persist": {
        "ipcSocket": "/tmp/p.sock",
        "grpcSocket": "/tmp/g.sock",
        "segmentSize": "16MB",
        "segmentTime": "30s",
        "compressionLevel": 1,
        "clientBuffer": "64MB",
        "retention": {"maxAge": "7d", "maxTotalSize": "10GB", "sweepInterval": "5m"},
        "listen": "",
    },
    "state": {
        "backend": "sqlite",
        "socket": "/tmp/s.sock",
        "writeTimeout": "5s",
        "writeRetries": 3,
        "bufferSize": 10000,
        "sqlite": {"path": "/tmp/jobs.db"},
        "redis": {
            "host": "127.0.0.1",
            "port": 6379,
            "db": 0,
            "password": "",
            "keyPrefix": "joblet:",
            "tls": {"enabled": True, "caFile": "", "certFile": "", "keyFile": "", "verify": True},
        },
        "dynamodb": {
            "region": "us-east-1",
            "table": "joblet-jobs",
            "endpoint": "",
            "ttlDays": 0,
            "createTable": False,
        },
    },
    "metrics": {
        "interval": 5,
        "historySamples": 720,
        "historyCacheBytes": 1024,
        "cloudMetadata": False,
        "prometheus": {"enabled": False, "address": "127.0.0.1:9100"},
    },
    "network": {
        "bridgeCidr": "172.20.0.0/16",
        "isolatedPool": "10.254.0.0/16",
        "defaultMode": "bridge",
        "dns": [],
        "dnsFallback": [],
        "allowHost": False,
        "maxCustomNetworks": 32,
        "mtu": 1500,
        "maxBitsPerSec": 10_000_000_000,
        "defaultIngressBitsPerSec": 0,
        "defaultEgressBitsPerSec": 0,
        "bigTcp": "auto",
    },
    "volumes": {"maxSize": "100GB", "maxCount": 0},
    "audit": {"enabled": True, "maxSize": "10MB", "maxFiles": 5},
    "gpu": {
        "enabled": False,
        "inventory": "nvml",
        "strategy": "first-fit",
        "sharing": False,
        "allowWithoutDeviceFilter": False,
        "static": {
            "deviceRoot": "/dev",
            "procDevices": "/proc/devices",
            "driverProc": "",
            "gpus": [],
        },
    },
    "runtime": {
        "maxSize": "10GB",
        "allowedSources": ["https://github.com/"],
        "githubBaseUrl": "https://github.com",
        "testTimeout": "2m",
        "fetchTimeout": "30s",
        "fetchTotalTimeout": "10m",
        "build": {
            "timeout": "30m",
            "maxMemory": 2048,
            "maxCpu": 0,
            "scratchSize": "1GB",
            "networks": [],
        },
    },
}


def test_every_unknown_key_is_named_with_its_path_in_file_order() -> None:
    raw = {
        "joblet": {"maxConcurentJobs": 2, "root": "/x", "rot": "/y"},
        "stat": {},
        "state": {"redis": {"hots": "h", "tls": {"cafile": "c"}}},
    }
    assert unknown_keys(raw, SCHEMA) == [
        "joblet.maxConcurentJobs: unknown key (did you mean maxConcurrentJobs?)",
        "joblet.rot: unknown key (did you mean root?)",
        "stat: unknown section (did you mean state?)",
        "state.redis.hots: unknown key (did you mean host?)",
        "state.redis.tls.cafile: unknown key (did you mean caFile?)",
    ]


def test_known_keys_with_scalar_or_empty_values_pass() -> None:
    assert unknown_keys({"joblet": None, "state": {"redis": {"tls": True}}}, SCHEMA) == []
    assert unknown_keys({}, SCHEMA) == []


def test_a_suggestion_ignores_case_and_otherwise_lists_the_known_keys() -> None:
    assert suggest("MAXCONCURRENTJOBS", {"maxConcurrentJobs": None}) == (
        "did you mean maxConcurrentJobs?"
    )
    assert suggest("colour", {"root": None, "port": None}) == "known: port, root"
    assert suggest("x", {}) == "no keys are known here"


def test_every_documented_key_is_known_and_read() -> None:
    assert key_problems(EVERY_KEY, Path("f.yml")) == []
    assert set(FILE_KEYS) == set(EVERY_KEY)
    parse_metrics_config(EVERY_KEY["metrics"])
    parse_network_config(EVERY_KEY["network"])
    parse_volumes_config(EVERY_KEY["volumes"])
    parse_audit_config(EVERY_KEY["audit"])
    parse_runtime_config(EVERY_KEY["runtime"])
    parse_cluster_config(EVERY_KEY["cluster"])
    parse_gpu_config(EVERY_KEY["gpu"])
    parse_ui_config(EVERY_KEY["ui"], Path("/tmp"))


def test_each_section_refuses_a_typo_anywhere_in_it() -> None:
    for section, keys in EVERY_KEY.items():
        for key in keys:
            raw = {section: {**keys, f"{key}X": 1}}
            (problem,) = key_problems(raw, Path("f.yml"))
            assert problem == f"f.yml: {section}.{key}X: unknown key (did you mean {key}?)"


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "joblet-config.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_file_is_refused_with_every_problem_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, {"joblet": {"maxConcurentJobs": 2}, "netwrok": {}, "volumes": None})
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    assert str(caught.value).splitlines() == [
        f"config {path} has unknown keys:",
        f"{path}: joblet.maxConcurentJobs: unknown key (did you mean maxConcurrentJobs?)",
        f"{path}: netwrok: unknown section (did you mean network?)",
    ]


def test_the_helpers_refuse_the_file_as_the_daemon_does(tmp_path: Path) -> None:
    path = _write(tmp_path, {"persist": {"segmentSise": "1MB"}, "joblet": {"root": "/x"}})
    messages = []
    for load in (read_config_file, load_persist_config, load_state_config, load_volumes_config):
        with pytest.raises(ConfigError) as caught:
            load(path)
        messages.append(str(caught.value))
    assert len(set(messages)) == 1
    assert "persist.segmentSise: unknown key (did you mean segmentSize?)" in messages[0]


def test_a_feature_section_parsed_alone_names_its_typos() -> None:
    with pytest.raises(
        ConfigError, match=r"metrics.intervall: unknown key \(did you mean interval"
    ):
        parse_metrics_config({"intervall": 5})
    with pytest.raises(ConfigError, match=r"network.bigTCP: unknown key \(did you mean bigTcp"):
        parse_network_config({"bigTCP": "on"})
    with pytest.raises(ConfigError, match=r"volumes.maxsize: unknown key \(did you mean maxSize"):
        parse_volumes_config({"maxsize": "1GB"})


def _flatten(schema: Schema) -> set[str]:
    keys = set(schema)
    for nested in schema.values():
        if nested is not None:
            keys |= _flatten(nested)
    return keys


def _keys_read(module: ModuleType) -> set[str]:
    """The string keys a config module reads: x.get("key", ...), x["key"],
    and the sections it takes with _section(raw, "name") / _mapping(...)."""
    found: set[object] = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            found.add(node.slice.value)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            at = {"get": 0, "_section": 1, "_mapping": 1}.get(name)
            if at is not None and len(node.args) > at and isinstance(node.args[at], ast.Constant):
                found.add(node.args[at].value)
    return {key for key in found if isinstance(key, str)}


@pytest.mark.parametrize(
    "module",
    [
        loader,
        persist_config,
        state_config,
        metrics_config,
        network_config,
        volumes_config,
        runtime_config,
        cluster_config,
        gpu_config,
    ],
    ids=lambda m: m.__name__,
)
def test_every_key_the_code_reads_is_known(module: ModuleType) -> None:
    """A key read but not listed would be refused in every file that sets it."""
    assert _keys_read(module) - _flatten(FILE_KEYS) == set()


def test_job_retention_is_read_with_its_defaults_and_bad_values_named() -> None:
    from joblet.config.loader import parse_daemon_config

    security = {"serverCert": "pem", "serverKey": "pem", "caCert": "pem"}

    def retention(section: Any) -> Any:
        return parse_daemon_config({"security": security, "joblet": section}).jobs.retention

    default = retention({})
    assert (default.max_age_s, default.max_jobs, default.interval_s) == (7 * 86400.0, 10_000, 60.0)
    off = retention({"jobRetention": {"maxAge": 0, "maxJobs": 0}})
    assert not off.enabled
    assert retention({"jobRetention": {"maxAge": "12h", "interval": "5s"}}).max_age_s == 43200.0
    for bad, message in (
        ({"maxJobs": -1}, "maxJobs must be a whole number >= 0"),
        ({"maxJobs": "many"}, "maxJobs must be a whole number >= 0"),
        ({"interval": 0}, "interval must be positive"),
        ({"maxAge": "soon"}, "soon"),
    ):
        with pytest.raises(ValueError, match=message):
            retention({"jobRetention": bad})
