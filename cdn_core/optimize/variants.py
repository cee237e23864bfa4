"""The cache of derived variants and how they are built from their source entry.

Records are keyed by ``(entry.key, entry.vary_key, label)`` and hold the source entry
object they were made from: a record answers only for that very object, so a replaced
or purged entry never yields an old variant. After a 304 refresh (RFC 9111 4.3.4), the
node's new entry shares the old body object and ETag: then only the variant's head is
rebuilt from the new headers, the encoded body is kept. (``StoredResponse`` has slots
and no ``__weakref__``, so the records hold their sources strongly; the LRU byte bound
and :meth:`VariantCache.forget` limit how long a purged source stays in memory.)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cdn_core.heads import combine, serialize_head
from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.vary import VaryKey
from cdn_core.optimize.compress import merge_vary, variant_headers
from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.store.entry import StoredResponse

RecordKey = tuple[str, VaryKey, str]
MAX_RECORDS = 100_000
RECORD_OVERHEAD = 256  # bytes charged per record beyond head and body (measured order)


@dataclass(slots=True)
class VariantSpec:
    """How a variant derives from its source. ``mode`` ``vary``: the source's body and
    headers with ``vary`` merged into ``Vary``; ``derive``: a new body, headers from
    :func:`~cdn_core.optimize.compress.variant_headers`; ``meta``: no variant, facts
    about the source (image dimensions, or why it is refused)."""

    label: str
    kind: str
    vary: str
    mode: str = "derive"
    content_encoding: str | None = None
    content_type: str | None = None


@dataclass(slots=True)
class Record:
    source: StoredResponse
    spec: VariantSpec
    variant: StoredResponse | None  # None: made but not worth sending, failed, or meta
    outcome: str  # ok | larger | error | refused | meta
    charge: int
    info: Any = None


class VariantCache:
    """LRU of :class:`Record` bounded by ``max_bytes`` (variant heads and bodies)."""

    def __init__(self, max_bytes: int, via: str, metrics: OptimizeMetrics) -> None:
        self.max_bytes = max_bytes
        self.via = via
        self.metrics = metrics
        self._records: OrderedDict[RecordKey, Record] = OrderedDict()
        self._by_key: dict[str, set[RecordKey]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    def get(self, entry: StoredResponse, label: str) -> Record | None:
        """The record of variant ``label`` made from ``entry`` (``None`` when there is
        none, or it was made from a different response)."""
        rk = (entry.key, entry.vary_key, label)
        rec = self._records.get(rk)
        if rec is None:
            return None
        if rec.source is not entry:
            if rec.source.body is not entry.body or rec.source.etag != entry.etag:
                self.drop(rk)  # a different response now: its variants are void
                return None
            rec.source = entry  # refreshed by a 304: same body, new headers
            if rec.variant is not None:
                body = entry.body if rec.spec.mode == "vary" else rec.variant.body
                rec.variant = self.build(entry, rec.spec, body)
        self._records.move_to_end(rk)
        return rec

    def put(self, rec: Record) -> None:
        e = rec.source
        rk = (e.key, e.vary_key, rec.spec.label)
        if rk in self._records:
            self.drop(rk)
        self._records[rk] = rec
        self._by_key.setdefault(e.key, set()).add(rk)
        self.bytes += rec.charge
        while (self.bytes > self.max_bytes or len(self._records) > MAX_RECORDS) and len(
            self._records
        ) > 1:
            self.drop(next(iter(self._records)))
        self._gauges()

    def add(
        self, entry: StoredResponse, spec: VariantSpec, body: bytes | None, outcome: str, info: Any
    ) -> Record:
        """Build (when ``body`` is given) and cache a variant of ``entry``."""
        variant = self.build(entry, spec, body) if body is not None else None
        charge = RECORD_OVERHEAD
        if variant is not None:
            charge += len(variant.head) + (0 if variant.body is entry.body else len(body or b""))
        rec = Record(entry, spec, variant, outcome, charge, info)
        self.put(rec)
        return rec

    def same_body(self, entry: StoredResponse, label: str, vary: str) -> StoredResponse:
        """``entry`` with ``vary`` merged into its ``Vary`` (``entry`` itself when it
        already lists it), built once and cached."""
        rec = self.get(entry, label)
        if rec is None or rec.variant is None:
            rec = self.add(
                entry, VariantSpec(label, label, vary, mode="vary"), entry.body, "ok", None
            )
        assert rec.variant is not None
        return rec.variant

    def forget(self, key: str) -> None:
        """Drop every record made from responses under primary key ``key``."""
        for rk in list(self._by_key.get(key, ())):
            self.drop(rk)

    def clear(self) -> None:
        for rk in list(self._records):
            self.drop(rk)

    def drop(self, rk: RecordKey) -> None:
        rec = self._records.pop(rk, None)
        if rec is None:
            return
        self.bytes -= rec.charge
        keys = self._by_key.get(rk[0])
        if keys is not None:
            keys.discard(rk)
            if not keys:
                del self._by_key[rk[0]]
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.cache_bytes.set(self.bytes)
        self.metrics.cache_variants.set(len(self._records))

    # building ----------------------------------------------------------------------------
    def build(self, entry: StoredResponse, spec: VariantSpec, body: bytes) -> StoredResponse:
        """The variant of ``entry`` described by ``spec`` with ``body``, its head
        pre-serialised. Freshness, Cache-Control and the secondary key are the source's:
        the node decides freshness on the source and never stores variants."""
        if spec.mode == "vary":
            headers = merge_vary(entry.headers, spec.vary)
            if headers is entry.headers:
                return entry
        else:
            headers = variant_headers(
                entry.headers,
                label=spec.label,
                vary=spec.vary,
                content_encoding=spec.content_encoding,
                content_type=spec.content_type,
                etag=entry.etag,
            )
        fields = combine(headers)
        v = StoredResponse(
            key=entry.key,
            host=entry.host,
            status=entry.status,
            reason=entry.reason,
            headers=headers,
            fields=fields,
            body=body,
            cc=entry.cc,
            freshness=entry.freshness,
            vary_names=entry.vary_names,
            vary_key=entry.vary_key,
            surrogate_keys=entry.surrogate_keys,
            etag=fields.get("etag"),
            last_modified=entry.last_modified,
        )
        v.head = serialize_head(entry.status, entry.reason, headers, len(body), self.via)
        v.size = v.compute_size()
        return v

    def error(
        self,
        entry: StoredResponse,
        status: int,
        reason: str,
        message: str,
        *,
        vary: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> StoredResponse:
        """A small ``text/plain``, ``no-store`` response (406, 400, 422, 503)."""
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]
        if vary:
            headers.append(("Vary", vary))
        headers.extend(extra)
        body = f"{status} {reason}: {message}\n".encode()
        v = StoredResponse(
            key=entry.key,
            host=entry.host,
            status=status,
            reason=reason,
            headers=headers,
            fields=combine(headers),
            body=body,
            cc=parse_cache_control("no-store"),
            freshness=entry.freshness,
        )
        v.head = serialize_head(status, reason, headers, len(body), self.via)
        v.size = v.compute_size()
        return v
