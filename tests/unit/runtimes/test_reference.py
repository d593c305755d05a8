from __future__ import annotations

import pytest

from joblet.errors import InvalidArgument
from joblet.runtimes.reference import (
    RuntimeReference,
    check_name,
    normalize,
    normalize_arch,
    parse_reference,
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("python-3.11", "python-3.11"),
        ("openjdk-17", "openjdk-17"),
        ("tools", "tools"),
        ("python:3.11", "python-3.11"),
        ("python:3.11-ml", "python-3.11-ml"),
        ("python:3.11-ml-gpu@amd64", "python-3.11-ml-gpu"),
        ("node:20@x86_64", "node-20"),
        ("go:1.22@aarch64", "go-1.22"),
    ],
)
def test_both_forms_normalize(text: str, name: str) -> None:
    assert normalize(text) == name


def test_lang_form_keeps_its_parts() -> None:
    assert parse_reference("python:3.11-ml-gpu@aarch64") == RuntimeReference(
        "python-3.11-ml-gpu", "python", "3.11", ("ml", "gpu"), "arm64"
    )


def test_plain_name_reads_its_parts_when_it_can() -> None:
    assert parse_reference("python-3.11-ml") == RuntimeReference(
        "python-3.11-ml", "python", "3.11", ("ml",), ""
    )
    assert parse_reference("mytools") == RuntimeReference("mytools")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "../x",
        "..",
        ".",
        "a/b",
        "/etc",
        "a\0b",
        "Python-3.11",
        "-x",
        "a" * 64,
        "a..b",
        "python:",
        ":3.11",
        "python:3.11@mars",
        "python:3.11--ml",
        "python:../3",
        "pyth/on:3.11",
        "python@amd64",
        "x" * 300,
        "name with space",
    ],
)
def test_bad_references_are_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_reference(text)


def test_name_allowlist_edges() -> None:
    assert check_name("a") == "a"
    assert check_name("a" * 63) == "a" * 63
    assert check_name("0.9_x-y") == "0.9_x-y"


def test_arch_aliases() -> None:
    assert normalize_arch("x86_64") == "amd64"
    assert normalize_arch("AMD64") == "amd64"
    assert normalize_arch("aarch64") == "arm64"
    assert normalize_arch("vax") == ""
