"""Mapping request paths to files under the root (origin.files) without a server."""

from __future__ import annotations

import os

import pytest

from origin.files import Kind, open_target, split_path


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("/", []),
        ("//a///b/", ["a", "b"]),
        ("/css/site.css", ["css", "site.css"]),
        ("/..", None),
        ("/a/./b", None),
        ("/.git/config", None),
        ("/a\\b", None),
        ("/a\x00b", None),
    ],
)
def test_split_path(path, parts):
    assert split_path(path) == parts


def test_open_target(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "index.html").write_text("hi")
    (root / "f.txt").write_text("f")
    os.mkfifo(root / "pipe")
    real = os.path.realpath(root)

    t = open_target(real, "/d/", "index.html")
    assert t.kind is Kind.FILE and t.relpath == "d/index.html" and t.st.st_size == 2
    t.fobj.close()
    assert open_target(real, "/d", "index.html").kind is Kind.REDIRECT
    t = open_target(real, "/", "f.txt")
    assert t.kind is Kind.FILE and t.relpath == "f.txt"
    t.fobj.close()
    assert open_target(real, "/f.txt/", "index.html").kind is Kind.NOT_FOUND
    assert open_target(real, "/missing", "index.html").kind is Kind.NOT_FOUND
    # A FIFO is not a regular file; opening it must neither block nor serve it.
    assert open_target(real, "/pipe", "index.html").kind is Kind.NOT_FOUND
