from __future__ import annotations

from joblet.runtimes.environment import expand, merge_environment, references, runtime_environment

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/work"}


def test_references_in_order() -> None:
    assert references("${A}:x:${B}") == ["A", "B"]
    assert references("$A and $$") == []


def test_expand_from_base_only() -> None:
    assert expand("/opt/runtime/bin:${PATH}", BASE) == "/opt/runtime/bin:/usr/bin:/bin"
    assert expand("${UNSET}x", BASE) == "x"


def test_order_base_runtime_user_secrets() -> None:
    runtime = (("PATH", "/opt/runtime/bin:${PATH}"), ("PYTHONHOME", "/opt/runtime"), ("A", "r"))
    env = merge_environment(BASE, runtime, {"A": "user", "B": "u"}, {"B": "secret"})
    assert env == {
        "PATH": "/opt/runtime/bin:/usr/bin:/bin",
        "HOME": "/work",
        "PYTHONHOME": "/opt/runtime",
        "A": "user",
        "B": "secret",
    }


def test_runtime_values_expand_from_base_not_from_each_other() -> None:
    env = runtime_environment(BASE, (("X", "1"), ("Y", "${X}${HOME}")))
    assert env["Y"] == "/work"
