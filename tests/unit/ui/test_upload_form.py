"""The run form's files as uploads: base names only, one cap for all."""

from __future__ import annotations

import io

import pytest

from joblet.ui.forms import FormError
from joblet.ui.upload_form import read_uploads, split_form, upload_name


class Field:
    def __init__(self, filename: str, content: bytes) -> None:
        self.filename = filename
        self.file = io.BytesIO(content)


def test_a_file_keeps_its_base_name_only() -> None:
    assert upload_name("data.txt", "uploads") == "data.txt"
    assert upload_name("../../etc/passwd", "uploads") == "passwd"
    assert upload_name("C:\\Users\\me\\run.sh", "uploads") == "run.sh"
    for bad in ("", "..", "dir/..", ".", "a\x00b"):
        with pytest.raises(FormError, match="is not a file name"):
            upload_name(bad, "uploads")


def test_text_fields_and_files_are_told_apart_and_an_empty_input_is_no_file() -> None:
    texts, files = split_form({"command": "cat a", "uploads": Field("a", b"1"),
                               "more": Field("", b"")})  # fmt: skip
    assert texts == {"command": "cat a"}
    assert [(f, n) for f, n, _ in files] == [("uploads", "a")]


def test_the_files_together_stay_under_the_cap() -> None:
    files = [("uploads", "a", io.BytesIO(b"x" * 60)), ("uploads", "b", io.BytesIO(b"y" * 40))]
    uploads = read_uploads(files, limit=100)
    assert [(u.path, len(u.content), u.mode) for u in uploads] == [("a", 60, 0o644),
                                                                   ("b", 40, 0o644)]  # fmt: skip
    over = [("uploads", "a", io.BytesIO(b"x" * 60)), ("uploads", "b", io.BytesIO(b"y" * 41))]
    with pytest.raises(FormError, match="larger than the 100 bytes") as caught:
        read_uploads(over, limit=100)
    assert caught.value.field == "uploads"


def test_two_files_of_one_name_are_refused() -> None:
    files = [("uploads", "x/a", io.BytesIO(b"1")), ("uploads", "y/a", io.BytesIO(b"2"))]
    with pytest.raises(FormError, match="two files are named 'a'"):
        read_uploads(files, limit=100)
