"""File operations of the disk tier (:mod:`cdn_core.store.disk`): one cache file's
index record, verified reads, crash-safe writes, and the soft-purge mark.

Every function here touches one file and raises ``OSError`` or
:class:`~cdn_core.store.diskformat.CorruptEntry`; what to do about it (drop the file,
count it) is the tier's decision.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

from cdn_core.http_cache.vary import VaryKey
from cdn_core.store.diskformat import (
    HEADER,
    MAGIC,
    SUFFIX,
    CorruptEntry,
    decode,
    file_name,
    read_header,
)
from cdn_core.store.entry import StoredResponse

SOFT_MARK = "soft-purged-before"


class Record:
    """What the tier's index keeps of one cache file: its ``name`` (file name without
    suffix), primary ``key``, ``host``, Vary names and secondary key, surrogate ``tags``
    and ``size`` (bytes on disk); ``gen`` orders writes, ``pending`` is the entry while
    its write is queued."""

    __slots__ = ("name", "key", "host", "vary_names", "vary_key", "tags", "size", "gen", "pending")

    def __init__(
        self,
        name: str,
        key: str,
        host: str,
        vary_names: tuple[str, ...],
        vary_key: VaryKey,
        tags: frozenset[str],
        size: int,
    ) -> None:
        self.name = name
        self.key = key
        self.host = host
        self.vary_names = vary_names
        self.vary_key = vary_key
        self.tags = tags
        self.size = size
        self.gen = 0
        self.pending: StoredResponse | None = None

    @classmethod
    def of(cls, entry: StoredResponse, size: int) -> Record:
        """The record of ``entry`` written as ``size`` bytes."""
        return cls(
            file_name(entry.key, entry.vary_key),
            entry.key,
            entry.host,
            entry.vary_names,
            entry.vary_key,
            entry.surrogate_keys,
            size,
        )


def load_record(path: Path) -> tuple[float, Record]:
    """The modification time (seconds since the epoch) and record of the cache file at
    ``path``, from its header and checked metadata only (the body is not read)."""
    st = path.stat()
    with path.open("rb") as f:
        head = f.read(HEADER.size)
        meta_len, meta_crc, _, _ = read_header(head, st.st_size)
        raw = f.read(meta_len)
    if zlib.crc32(raw) != meta_crc:
        raise CorruptEntry("metadata checksum mismatch")
    try:
        meta = json.loads(raw)
        rec = Record(
            path.name[: -len(SUFFIX)],
            meta["key"],
            meta["host"],
            tuple(meta["vary_names"]),
            tuple((n, v) for n, v in meta["vary_key"]),
            frozenset(meta["tags"]),
            st.st_size,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"bad metadata: {exc}") from exc
    if file_name(rec.key, rec.vary_key) != rec.name:
        raise CorruptEntry("file name does not match its key")
    return st.st_mtime, rec


def read_entry(path: Path, rec: Record) -> StoredResponse:
    """The stored response in ``path``, with both checksums verified and its keys
    matching ``rec``."""
    with path.open("rb") as f:
        data = f.read()
    meta_len, meta_crc, _, body_crc = read_header(data, len(data))
    raw = data[HEADER.size : HEADER.size + meta_len]
    body = data[HEADER.size + meta_len :]
    if zlib.crc32(raw) != meta_crc or zlib.crc32(body) != body_crc:
        raise CorruptEntry("checksum mismatch")
    try:
        entry = decode(json.loads(raw), body)
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"bad metadata: {exc}") from exc
    if entry.key != rec.key or entry.vary_key != rec.vary_key:
        raise CorruptEntry("entry does not match its index record")
    return entry


def write_temp(tmp: Path, meta: bytes, body: bytes, *, fsync: bool) -> None:
    """Write a whole cache file to ``tmp`` (flushed, and ``fsync``-ed when asked); the
    caller renames it over the final name."""
    header = HEADER.pack(MAGIC, len(meta), zlib.crc32(meta), len(body), zlib.crc32(body))
    tmp.parent.mkdir(exist_ok=True)
    with tmp.open("wb") as f:
        f.write(header)
        f.write(meta)
        f.write(body)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def fsync_dir(directory: Path) -> None:
    """``fsync`` a directory, so a rename in it survives power loss."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_soft_mark(directory: Path) -> float:
    """The persisted soft-purge mark (seconds since the epoch), 0.0 when there is none."""
    try:
        return float((directory / SOFT_MARK).read_text())
    except (OSError, ValueError):
        return 0.0


def write_soft_mark(directory: Path, now: float, *, fsync: bool) -> None:
    """Persist ``now`` as the soft-purge mark (atomically, by rename)."""
    path = directory / SOFT_MARK
    tmp = path.with_name(SOFT_MARK + ".tmp")
    with tmp.open("w") as f:
        f.write(repr(float(now)))
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
