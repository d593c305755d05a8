"""The plain-YAML reader of rnx configs: what it accepts means the same as in
PyYAML; everything else it leaves to PyYAML."""

from __future__ import annotations

import pytest
import yaml

from joblet.client.plain_yaml import parse_plain_yaml
from joblet.setup.config_files import NodeEntry, render_node_snippet, render_rnx_config

PEM = "-----BEGIN CERTIFICATE-----\nMIIBnDCCAUOgAwIBAgIU\nAAAA+/==\n-----END CERTIFICATE-----\n"


def entry(address: str) -> NodeEntry:
    return NodeEntry(address=address, cert=PEM, key=PEM.replace("CERT", "KEY"), ca=PEM)


WRITTEN = [
    render_rnx_config({"default": entry("127.0.0.1:50051"), "viewer": entry("127.0.0.1:50051")}),
    render_rnx_config({"default": entry("node-1.example.com:50051")}),
    render_rnx_config({"default": entry("[::1]:50051")}),
    render_node_snippet("ci", entry("10.0.0.5:443")),
]

ACCEPTED = [
    'nodes:\n  default:\n    address: "127.0.0.1:50051"\n    certFile: client.pem\n',
    "nodes:\n  default:\n    address: h:1\n    serverName: joblet\n",
    "nodes:\n  a:\n    address: 'localhost:1'\n    ca: |-\n      x\n\n      y\n\n\n",
    "# comment\n\nnodes:\n    deep:\n        address: h:1\n",
]

DECLINED = [
    "nodes:\n  default:\n    address: 50051\n",  # a number
    "nodes:\n  on:\n    address: h:1\n",  # a boolean key in YAML 1.1
    "nodes:\n  a:\n    serverName: yes\n",
    "nodes:\n  a:\n    serverName: null\n",
    "nodes:\n  a:\n    address: 1:20\n",  # base 60 in YAML 1.1
    "nodes:\n  a:\n    address: h:1 # comment\n",
    'nodes:\n  a:\n    address: "a\\tb"\n',
    "nodes:\n  a: {address: h:1}\n",
    "nodes:\n  a:\n    ca: >\n      folded\n",
    "nodes:\n  a:\n    ca: |\n      x\n    y: z\n   w: v\n",  # inconsistent indent
    "nodes:\n  a:\n",  # null, not a mapping
    "nodes:\r\n  a:\r\n    address: h:1\r\n",
    "nodes:\n\ta:\n",
    "nodes:\n  a:\n    address: h:1\n  a:\n    address: h:2\n",  # duplicate key
    "---\nnodes: {}\n",
    "nodes:\n  a:\n    address: &x h:1\n",
    "nodes:\n  a:\n    ca: |\n      x\n     \n      y\n",  # a spaces-only line in a block
    "nodes:\n  a:\n    address: h:1\n      more: x\n",
    "nodes:\n  é:\n    address: h:1\n",
]


@pytest.mark.parametrize("text", WRITTEN + ACCEPTED)
def test_accepted_files_read_as_pyyaml_reads_them(text: str) -> None:
    parsed = parse_plain_yaml(text)
    assert parsed is not None, text
    assert parsed == yaml.safe_load(text)


@pytest.mark.parametrize("text", DECLINED)
def test_anything_else_is_left_to_pyyaml(text: str) -> None:
    assert parse_plain_yaml(text) is None
