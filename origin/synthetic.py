"""Synthetic objects, for replaying CDN traces through the real stack (issue 23).

A trace names objects by id and size only. With ``synthetic`` set, the origin answers
``GET {prefix}{id}/{size}`` with ``size`` bytes that depend on ``id`` alone: the 64-byte
BLAKE2b digest of the id, repeated. The same id and size always give the same bytes and
the same strong ``ETag``, so revalidation (304) and ranges work as for files. A body is
produced in slices as it is sent, never held whole: a 1 GiB object costs one 64 KiB
block of memory. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BLOCK_REPEAT = 1024  # 64-byte digest x 1024 = one 64 KiB block


def parse(path: str, prefix: str, max_size: int) -> tuple[str, int] | None:
    """``(id, size)`` from ``{prefix}{id}/{size}``, or None when ``path`` is not one
    (another path, a bad id, a size that is not a decimal number up to ``max_size``)."""
    if not path.startswith(prefix):
        return None
    oid, sep, size_text = path[len(prefix):].partition("/")
    if not sep or not _ID.match(oid) or not size_text.isdigit() or len(size_text) > 15:
        return None
    size = int(size_text)
    return (oid, size) if size <= max_size else None


def etag(oid: str, size: int) -> str:
    """The strong entity tag of object ``oid`` of ``size`` bytes (RFC 9110 8.8.3)."""
    digest = hashlib.blake2b(oid.encode(), digest_size=8).hexdigest()
    return f'"syn-{digest}-{size:x}"'


def block(oid: str) -> bytes:
    """The 64 KiB period of ``oid``'s bytes."""
    return hashlib.blake2b(oid.encode()).digest() * _BLOCK_REPEAT


def slices(oid: str, offset: int, count: int, chunk: int) -> Iterator[bytes]:
    """Bytes ``offset .. offset + count - 1`` of the object, in pieces of at most
    ``chunk`` bytes."""
    period = block(oid)
    twice = period + period  # any window of one period's length is a slice of this
    n = len(period)
    while count > 0:
        take = min(chunk, count)
        start = offset % n
        if take <= n:
            piece = twice[start:start + take]
        else:
            whole, rest = divmod(take, n)
            rotated = twice[start:start + n]
            piece = rotated * whole + rotated[:rest]
        yield piece
        offset += take
        count -= take
