"""Secret values are replaced by *** where they stand; everything else of the
text, layout included, is kept."""

from __future__ import annotations

import textwrap

from joblet.workflows.masking import UNREADABLE, mask_secrets
from joblet.workflows.yamlspec import parse_workflow

from .test_yamlspec import billion_laughs

TEXT = textwrap.dedent(
    """\
    # nightly
    environment: {STAGE: prod, GIT_TOKEN: ghp_abc}   # token stays secret
    secret_environment:
      DB_PASSWORD: "hunter2"
    jobs:
      a:
        command: x
        args: [&pw s3cr3t, plain]
        environment:
          api_key: 'k-123'
          SECRET_SAUCE: ketchup
          PUBLIC: visible
          DSN: "u:${DB_PASSWORD}@db"
        secret_environment:
          SHARED: *pw
          CERT: |
            -----BEGIN-----
            abc
          NUM: 42
    """
)


def test_secret_values_become_stars_and_nothing_else_changes() -> None:
    masked = mask_secrets(TEXT)
    expected = (
        TEXT.replace("ghp_abc", '"***"')
        .replace('"hunter2"', '"***"')
        .replace("&pw s3cr3t", '&pw "***"')
        .replace("'k-123'", "'***'")
        .replace("ketchup", '"***"')
        .replace("NUM: 42", 'NUM: "***"')
        .replace("-----BEGIN-----\n        abc\n", "***\n")
    )
    assert masked == expected
    for secret in ("ghp_abc", "hunter2", "s3cr3t", "k-123", "ketchup", "BEGIN", "42"):
        assert secret not in masked
    assert "PUBLIC: visible" in masked and "# token stays secret" in masked


def test_masked_text_is_still_the_same_valid_workflow_shape() -> None:
    masked = mask_secrets(TEXT)
    spec = parse_workflow(masked)
    assert spec.jobs[0].secret_environment["SHARED"] == "***"
    assert spec.jobs[0].args == ("***", "plain")
    assert masked.count("\n") == TEXT.count("\n") - 1  # the two-line block became one


def test_text_without_secrets_is_unchanged() -> None:
    text = "jobs:\n  a: {command: echo, environment: {A: b}}  # hi\n"
    assert mask_secrets(text) == text


def test_unreadable_text_is_hidden_whole() -> None:
    assert mask_secrets("jobs: [\nsecret_environment: {P: x}\n") == UNREADABLE


def test_alias_bomb_under_secrets_is_bounded() -> None:
    bomb = billion_laughs("\n    secret_environment: {P: *l8}\n")
    assert mask_secrets(bomb) == UNREADABLE
