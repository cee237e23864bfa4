"""An on-disk tier for mid-tier nodes: a byte budget on a directory, surviving restarts.

One file per stored response (variant), in the format of
:mod:`cdn_core.store.diskformat`, under 256 fan-out directories.

**Durability.** A file is written to a temporary name, flushed and ``fsync``-ed, then
renamed over the final name (atomic on POSIX) and the directory ``fsync``-ed. A crash
leaves either the old file, the new one or a ``*.tmp`` that the next start deletes.
**Integrity.** At start-up every file's header and metadata are read and checked (magic,
lengths against the file size, metadata CRC); the body's CRC is checked on every read.
A torn or corrupt file is deleted and forgotten, never served. CRC-32 (zlib, C speed)
catches torn writes and bit rot; it is not a defence against someone who can write the
cache directory.
**Freshness across restarts.** The stored response time is wall-clock, so the age of an
entry read after a restart includes the downtime (RFC 9111 4.2.3) and the node decides
fresh or stale as for any stored response; stale entries are kept as validator sources
and for stale-if-error/failover serving.

Writes run in one writer thread once :meth:`DiskTier.start` ran (until then, and after
:meth:`close`, synchronously); the event loop only encodes the metadata. Reads are
synchronous (a mid tier's memory miss; page cache helps). Index updates and the final
rename happen under one lock with a per-file generation number, so a purge or eviction
that overtakes a queued write wins: the write's temporary file is discarded.
Eviction is LRU by bytes over the on-disk entries.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from cdn_core.http_cache import Fields
from cdn_core.http_cache.vary import VaryKey, secondary_key
from cdn_core.store.diskfiles import (
    Record,
    fsync_dir,
    load_record,
    read_entry,
    read_soft_mark,
    write_soft_mark,
    write_temp,
)
from cdn_core.store.diskformat import HEADER, SUFFIX, CorruptEntry, encode_meta, file_name
from cdn_core.store.entry import StoredResponse
from cdn_core.store.protocol import PurgeSelector

log = logging.getLogger("cdn.store.disk")

VariantId = tuple[str, VaryKey]


class DiskTier:
    """Stored responses in ``directory`` within ``max_bytes`` (file sizes). Objects
    above ``max_object_bytes`` are not written. ``fsync=False`` skips the fsyncs (tests,
    or a tier that accepts losing recent writes on power loss)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        max_object_bytes: int | None = None,
        fsync: bool = True,
        max_pending_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.max_object_bytes = max_object_bytes or max_bytes
        self.fsync = fsync
        self.max_pending_bytes = max_pending_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[str, Record] = OrderedDict()  # LRU order
        self._by_key: dict[str, list[str]] = {}
        self._by_host: dict[str, set[str]] = {}
        self._by_tag: dict[str, set[str]] = {}
        self.bytes = 0
        self._gen = 0
        self._pending_bytes = 0
        self._queue: queue.Queue[tuple[str, int, bytes, StoredResponse] | None] | None = None
        self._thread: threading.Thread | None = None
        self.counters = {
            "writes": 0,
            "write_errors": 0,
            "writes_dropped": 0,
            "corrupt": 0,
            "evictions": 0,
            "loaded": 0,
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.soft_mark = read_soft_mark(self.dir)
        self._load()

    # start-up ------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.dir / name[:2] / (name + SUFFIX)

    def _load(self) -> None:
        found: list[tuple[float, Record]] = []
        for sub in sorted(p for p in self.dir.iterdir() if p.is_dir()):
            for path in sub.iterdir():
                if path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)  # an interrupted write
                    continue
                if not path.name.endswith(SUFFIX):
                    continue
                try:
                    found.append(load_record(path))
                except (OSError, CorruptEntry) as exc:
                    log.warning("dropping corrupt cache file %s: %s", path, exc)
                    self.counters["corrupt"] += 1
                    path.unlink(missing_ok=True)
        found.sort(key=lambda t: t[0])
        for _, m in found:
            self._add(m)
        self.counters["loaded"] = len(found)
        self._evict_over_budget()

    # index ---------------------------------------------------------------------------
    def _add(self, m: Record) -> None:
        self._index[m.name] = m
        self.bytes += m.size
        names = self._by_key.setdefault(m.key, [])
        if m.name not in names:
            names.append(m.name)
        self._by_host.setdefault(m.host, set()).add(m.key)
        for tag in m.tags:
            self._by_tag.setdefault(tag, set()).add(m.key)

    def _forget(self, name: str) -> Record | None:
        """Remove ``name`` from the index and delete its file (caller holds the lock)."""
        m = self._index.pop(name, None)
        if m is None:
            return None
        self.bytes -= m.size
        if m.pending is not None:
            self._pending_bytes -= m.size
            m.pending = None
        names = self._by_key.get(m.key)
        if names is not None:
            if name in names:
                names.remove(name)
            if not names:
                del self._by_key[m.key]
                self._unindex_key(m)
        try:
            self._path(name).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot delete cache file %s: %s", name, exc)
        return m

    def _unindex_key(self, m: Record) -> None:
        keys = self._by_host.get(m.host)
        if keys is not None:
            keys.discard(m.key)
            if not keys:
                del self._by_host[m.host]
        for tag in m.tags:
            tagged = self._by_tag.get(tag)
            if tagged is not None:
                tagged.discard(m.key)
                if not tagged:
                    del self._by_tag[tag]

    def _evict_over_budget(self) -> None:
        while self.bytes > self.max_bytes and self._index:
            self._forget(next(iter(self._index)))
            self.counters["evictions"] += 1

    # reads ---------------------------------------------------------------------------
    def get(self, key: str, request_fields: Fields) -> StoredResponse | None:
        """The stored variant of ``key`` matching the request, read and verified."""
        names = self._by_key.get(key)
        if not names:
            return None
        for name in list(names):
            m = self._index.get(name)
            if m is None:
                continue
            if m.vary_names and secondary_key(m.vary_names, request_fields) != m.vary_key:
                continue
            return self._read(m)
        return None

    def variants(self, key: str) -> list[StoredResponse]:
        out = []
        for name in list(self._by_key.get(key, ())):
            m = self._index.get(name)
            entry = self._read(m) if m is not None else None
            if entry is not None:
                out.append(entry)
        return out

    def _read(self, m: Record) -> StoredResponse | None:
        with self._lock:
            if self._index.get(m.name) is not m:
                return None
            self._index.move_to_end(m.name)
            if m.pending is not None:
                self._apply_soft_mark(m.pending)
                return m.pending  # queued, not yet on disk
        path = self._path(m.name)
        try:
            entry = read_entry(path, m)
        except (OSError, CorruptEntry) as exc:
            log.warning("dropping corrupt cache file %s: %s", path, exc)
            with self._lock:
                if self._index.get(m.name) is m:
                    self._forget(m.name)
                    self.counters["corrupt"] += 1
            return None
        self._apply_soft_mark(entry)
        entry.size = entry.compute_size()
        return entry

    # writes --------------------------------------------------------------------------
    def put(self, entry: StoredResponse) -> bool:
        """Write ``entry`` (replacing the same variant); False when it is not kept."""
        meta = encode_meta(entry)
        size = HEADER.size + len(meta) + len(entry.body)
        if size > self.max_object_bytes or size > self.max_bytes:
            return False
        name = file_name(entry.key, entry.vary_key)
        threaded = self._queue is not None
        with self._lock:
            if threaded and self._pending_bytes + size > self.max_pending_bytes:
                self.counters["writes_dropped"] += 1
                return False
            old = self._index.get(name)
            if old is not None:
                self.bytes -= old.size
                if old.pending is not None:
                    self._pending_bytes -= old.size
                self._index.pop(name)
            m = Record.of(entry, size)
            self._gen += 1
            m.gen = self._gen
            m.pending = entry
            self._pending_bytes += size
            # Variants of a key must share Vary names (the memory store enforces it).
            for other in list(self._by_key.get(entry.key, ())):
                if other != name and self._index[other].vary_names != entry.vary_names:
                    self._forget(other)
            self._add(m)
            self._evict_over_budget()
            if name not in self._index:
                return False
        if self._queue is not None:
            self._queue.put((name, m.gen, meta, entry))
        else:
            self._write(name, m.gen, meta, entry)
        return True

    def _write(self, name: str, gen: int, meta: bytes, entry: StoredResponse) -> None:
        path = self._path(name)
        tmp = path.with_name(f"{name}.{gen}.tmp")
        try:
            write_temp(tmp, meta, entry.body, fsync=self.fsync)
            with self._lock:
                m = self._index.get(name)
                if m is None or m.gen != gen:
                    tmp.unlink(missing_ok=True)  # purged, evicted or replaced meanwhile
                    return
                os.replace(tmp, path)
                m.pending = None
                self._pending_bytes -= m.size
                self.counters["writes"] += 1
            if self.fsync:
                fsync_dir(path.parent)
        except OSError as exc:
            log.warning("cannot write cache file %s: %s", path, exc)
            tmp.unlink(missing_ok=True)
            with self._lock:
                m = self._index.get(name)
                if m is not None and m.gen == gen:
                    self._forget(name)
                self.counters["write_errors"] += 1

    def remove(self, key: str, vary_key: VaryKey) -> None:
        with self._lock:
            self._forget(file_name(key, vary_key))

    def purge(self, sel: PurgeSelector, now: float) -> set[VariantId]:
        """Remove matching entries; returns their (key, vary_key) ids. A soft purge of
        everything (what a node does when it cannot tell which purges it missed while
        down) keeps the files: it persists ``now`` as a mark, and every entry stored
        before the mark is read back stale (lifetime capped at its age at ``now``), so it
        is revalidated rather than fetched again."""
        if sel.type == "all" and sel.soft:
            self._set_soft_mark(now)
            with self._lock:
                return {(m.key, m.vary_key) for m in self._index.values()}
        with self._lock:
            keys = sel.keys(self._by_key, self._by_host, self._by_tag)
            out: set[VariantId] = set()
            for key in keys:
                for name in list(self._by_key.get(key, ())):
                    m = self._index[name]
                    if sel.type == "tag" and sel.value not in m.tags:
                        continue
                    self._forget(name)
                    out.add((m.key, m.vary_key))
            return out

    # soft purge of everything ---------------------------------------------------------
    def _set_soft_mark(self, now: float) -> None:
        write_soft_mark(self.dir, now, fsync=self.fsync)
        self.soft_mark = max(self.soft_mark, float(now))

    def _apply_soft_mark(self, entry: StoredResponse) -> None:
        f = entry.freshness
        if self.soft_mark and f.response_time <= self.soft_mark:
            entry.set_freshness(
                replace(f, freshness_lifetime=min(f.freshness_lifetime, f.age(self.soft_mark)))
            )

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Move writes to a writer thread (idempotent)."""
        if self._thread is not None:
            return
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cdn-disk-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._write(*item)

    def close(self) -> None:
        """Finish queued writes and stop the writer thread."""
        if self._thread is None or self._queue is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        self._queue = None

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len(self._index),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "pending_bytes": self._pending_bytes,
            **self.counters,
        }
