"""Mapping a request path to a file under the root, safely, and opening it.

Blocking (``stat``/``open``): call :func:`open_target` in an executor. The rules that keep
a request inside the root:

* every path segment is checked before touching the disk: empty segments are collapsed,
  and a segment that starts with ``.`` (``.``, ``..``, dotfiles such as ``.env``) or holds
  a NUL or backslash makes the path not found, so neither ``/../x`` nor its percent-encoded
  form (aiohttp decodes ``%2e%2e`` before we see it) can climb out;
* the final file's real path (symlinks resolved) must still lie under the root's real
  path, so a symlink cannot escape it;
* only regular files are served; a directory serves its index file, and a directory asked
  for without the trailing slash is redirected so relative links in its index work.
"""

from __future__ import annotations

import enum
import io
import os
import stat
from dataclasses import dataclass


class Kind(enum.Enum):
    FILE = "file"
    NOT_FOUND = "not_found"
    REDIRECT = "redirect"  # a directory named without its trailing slash
    FORBIDDEN = "forbidden"  # exists but cannot be read


@dataclass(slots=True)
class Target:
    """The outcome of resolving a request path.

    For ``Kind.FILE``: ``relpath`` is the logical path under the root (``css/site.css``,
    ``index.html`` for ``/``), ``fobj`` the open file (the caller closes it) and ``st`` its
    ``fstat``, taken after opening so validators describe the bytes we will send.
    """

    kind: Kind
    relpath: str = ""
    fobj: io.BufferedReader | None = None
    st: os.stat_result | None = None


def split_path(url_path: str) -> list[str] | None:
    """The segments of a decoded URL path, or ``None`` when any segment is unsafe."""
    parts = [p for p in url_path.split("/") if p]
    for part in parts:
        if part.startswith(".") or "\x00" in part or "\\" in part:
            return None
    return parts


def _inside(root_real: str, path_real: str) -> bool:
    return path_real == root_real or path_real.startswith(root_real + os.sep)


def open_target(root_real: str, url_path: str, index: str) -> Target:
    """Resolve ``url_path`` (decoded, starting with ``/``) under ``root_real`` (an
    absolute path with symlinks already resolved) and open the file it names."""
    parts = split_path(url_path)
    if parts is None:
        return Target(Kind.NOT_FOUND)
    candidate = os.path.join(root_real, *parts)
    try:
        st = os.stat(candidate)
    except (OSError, ValueError):
        return Target(Kind.NOT_FOUND)
    if stat.S_ISDIR(st.st_mode):
        if parts and not url_path.endswith("/"):
            return Target(Kind.REDIRECT)
        parts = [*parts, index]
        candidate = os.path.join(candidate, index)
    elif url_path.endswith("/"):
        return Target(Kind.NOT_FOUND)  # "/file.html/" names no directory
    real = os.path.realpath(candidate)
    if not _inside(root_real, real):
        return Target(Kind.NOT_FOUND)
    # A symlink inside the root may point at a dotfile; the target's name counts too.
    rel_real = os.path.relpath(real, root_real)
    if any(seg.startswith(".") for seg in rel_real.split(os.sep)):
        return Target(Kind.NOT_FOUND)
    try:
        # O_NONBLOCK: opening a FIFO planted under the root must not hang a worker thread;
        # it has no effect on the regular files we go on to serve.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        return Target(Kind.FORBIDDEN)
    except OSError:
        return Target(Kind.NOT_FOUND)
    try:
        fst = os.fstat(fd)
    except OSError:
        os.close(fd)
        return Target(Kind.NOT_FOUND)
    if not stat.S_ISREG(fst.st_mode):
        os.close(fd)
        return Target(Kind.NOT_FOUND)
    fobj = os.fdopen(fd, "rb")
    return Target(Kind.FILE, relpath="/".join(parts), fobj=fobj, st=fst)


def read_range(fobj: io.BufferedReader, offset: int, size: int) -> bytes:
    """Read up to ``size`` bytes at byte ``offset`` (blocking)."""
    fobj.seek(offset)
    return fobj.read(size)


def read_small(root_real: str, name: str) -> bytes | None:
    """The bytes of the plain file ``name`` directly under the root (the 404 page), or
    ``None`` when it is missing, unreadable, or a symlink out of the root (blocking)."""
    real = os.path.realpath(os.path.join(root_real, name))
    if not _inside(root_real, real):
        return None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            return None
