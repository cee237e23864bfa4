"""The :class:`Transformer`: what the node calls to serve optimised variants.

Per request the node asks :meth:`Transformer.lookup` (synchronous, cheap) about the
stored identity response it is about to send. The answer is one of:

- ``None``: send the stored response as it is (not optimisable, disabled for the path,
  not a 200, the request is not GET/HEAD or carries ``Cache-Control: no-transform``);
- a :class:`~cdn_core.store.entry.StoredResponse` ready to send: a derived variant
  (``br``/``gzip`` body, AVIF/WebP/resized image), the identity or original with
  ``Vary`` added, or a small error response (406 no acceptable coding, 400 bad resize
  URL, 422 image refused, 503 encoders busy while identity is refused);
- :data:`NEEDS_ENCODING`: a variant has to be made first; ``await``
  :meth:`Transformer.make` with the same arguments, which never returns it.

What is chosen:

- Compressible responses (:mod:`.compress`): the coding from :mod:`.negotiate`; the
  identity, sent with ``Vary: Accept-Encoding``, for clients that take no coding we make,
  for ``Range`` requests (ranges are served from the identity bytes), and while a coding
  is not smaller than the identity. A client listing a current variant tag in
  ``If-None-Match`` is given that variant when it accepts it, so the node answers 304.
- Origin-encoded responses: passed through with their coding to clients accepting it;
  decoded (gzip, deflate, br; within ``compression.max_bytes``) for clients that do not
  and for clients without ``Accept-Encoding``; 406 when neither is possible.
- JPEG/PNG/GIF: AVIF/WebP when named in ``Accept`` and smaller, else the original, all
  with ``Vary: Accept``; a validly signed ``?w=`` resizes (never enlarges).
- Anything else: ``None``, or 406 when the client refuses identity.

Variants live in a :class:`~cdn_core.optimize.variants.VariantCache`, tied to their
source entry object (see there).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.optimize import compress, images
from cdn_core.optimize.etag import held_labels
from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.optimize.negotiate import (
    IDENTITY,
    CodingPrefs,
    MediaPrefs,
    choose_coding,
    coding_prefs,
    media_prefs,
    rank_image_formats,
)
from cdn_core.optimize.pool import EncodePool, PoolBusy, PoolClosed
from cdn_core.optimize.settings import OptimizeSettings
from cdn_core.optimize.variants import Record, VariantCache, VariantSpec
from cdn_core.store.entry import StoredResponse


class Pending(enum.Enum):
    NEEDS_ENCODING = "needs-encoding"


NEEDS_ENCODING = Pending.NEEDS_ENCODING
LookupResult = StoredResponse | Pending | None
_MEMO = 1024  # distinct Accept / Accept-Encoding / Content-Type values remembered
AE = "Accept-Encoding"


class RequestView(Protocol):
    """What the transformer reads of a request (``cdn_core.node.exchange.request.Request``)."""

    @property
    def method(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str]: ...


@dataclass(slots=True)
class _Outcome:
    body: bytes | None
    outcome: str  # ok | larger | error | refused
    message: str = ""


@dataclass(slots=True)
class _Job:
    """A variant to make: ``work`` runs in the pool, once per ``flight`` key."""

    flight: tuple[Any, ...]
    spec: VariantSpec
    work: Callable[[], _Outcome]


_Step = StoredResponse | _Job | None


def _memo(table: dict[Any, Any], key: Any, make: Callable[[Any], Any]) -> Any:
    value = table.get(key)
    if value is None:
        if len(table) >= _MEMO:
            table.clear()
        value = table[key] = make(key)
    return value


class Transformer:
    """Negotiated compression and image variants of stored responses (module docstring).

    ``via`` is this tier's ``Via`` value (``"1.1 edge-1"``), written into variant heads
    as :func:`~cdn_core.node.exchange.entries.build_entry` does.
    """

    def __init__(
        self,
        settings: OptimizeSettings,
        *,
        via: str,
        pool: EncodePool,
        metrics: OptimizeMetrics,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.variants = VariantCache(settings.cache_max_bytes, via, metrics)
        c = settings.compression
        self.codings = tuple(x for x in c.codings if x in compress.available_codings())
        enc = images.encoders_available()
        self.image_formats = tuple(f for f in settings.images.formats if enc.get(f))
        self._ae_memo: dict[str | None, CodingPrefs] = {}
        self._accept_memo: dict[str | None, MediaPrefs] = {}
        self._type_memo: dict[str, str] = {}

    # public API ------------------------------------------------------------------------
    def source_target(self, target: str) -> str:
        """The target whose stored response a request for ``target`` derives from: a
        validly signed resize target without its ``w``/``sig`` parameters, otherwise
        ``target`` itself. The node builds the cache key from this, so every width of an
        image shares one origin fetch; unsigned ones are left alone (never rewritten)."""
        s = self.settings
        if not s.images.enabled or "?" not in target or s.disabled_for(target.split("?", 1)[0]):
            return target
        source, rr = images.split_target(target, s.images)
        if rr is None or images.verify(rr, s.images) is not None:
            return target
        return source

    def lookup(self, entry: StoredResponse, req: RequestView) -> LookupResult:
        """What to send for ``req`` given the stored identity ``entry`` (see module)."""
        step = self._plan(entry, req, allow_jobs=True)
        if isinstance(step, _Job):
            if self.pool.busy(step.flight):
                self.metrics.result(step.spec.kind, "busy")
                return self._fallback(entry, req)
            return NEEDS_ENCODING
        return step

    async def make(self, entry: StoredResponse, req: RequestView) -> StoredResponse | None:
        """Make what :meth:`lookup` asked for (in the pool, once for concurrent requests
        of one variant) and return what to send, as :meth:`lookup` would now."""
        for _ in range(8):
            step = self._plan(entry, req, allow_jobs=True)
            if not isinstance(step, _Job):
                return step
            job = step

            def store(o: _Outcome, job: _Job = job) -> None:
                self._store(entry, job, o)

            try:
                await self.pool.run(job.flight, job.work, store)
            except (PoolBusy, PoolClosed):
                self.metrics.result(job.spec.kind, "busy")
                break
        return self._fallback(entry, req)

    def kind(self, entry: StoredResponse) -> str:
        """What this transformer could do with ``entry`` whatever the request:
        ``fixed`` means nothing (the node then skips :meth:`lookup` unless the client
        refuses identity); computed once per stored entry by the node."""
        if entry.status != 200:
            return "fixed"
        return self._kind(entry)

    def needs_body(self, meta: StoredResponse, req: RequestView) -> bool:
        """Whether the response described by ``meta`` (head only, body still arriving)
        may be sent to ``req`` as something other than its identity bytes: then the node
        waits for the whole body instead of streaming it. Cheap: headers only."""
        if meta.status != 200 or req.method not in ("GET", "HEAD"):
            return False
        if self.settings.disabled_for(req.target.split("?", 1)[0]):
            return False
        f = meta.fields
        if "content-encoding" in f and compress.content_codings(f["content-encoding"]):
            return True  # a client that does not accept the coding gets it decoded
        if meta.cc.no_transform or "content-range" in f:
            return False
        kind: str = _memo(self._type_memo, f.get("content-type", ""), self._type_kind)
        return kind in ("image", "text")

    def forget(self, key: str) -> None:
        """Drop the variants of responses stored under primary key ``key`` (on purge;
        replaced entries are detected anyway)."""
        self.variants.forget(key)

    def clear(self) -> None:
        """Drop every variant (purge of everything)."""
        self.variants.clear()

    async def aclose(self) -> None:
        """Close the pool: queued encodes are dropped, running ones awaited (in a thread,
        so the loop is not blocked)."""
        await asyncio.to_thread(self.pool.close)

    # planning ---------------------------------------------------------------------------
    def _fallback(self, entry: StoredResponse, req: RequestView) -> StoredResponse | None:
        """What to send without starting an encode (the pool is busy or closed)."""
        step = self._plan(entry, req, allow_jobs=False)
        assert not isinstance(step, _Job)
        return step

    def _plan(self, entry: StoredResponse, req: RequestView, *, allow_jobs: bool) -> _Step:
        if entry.status != 200 or req.method not in ("GET", "HEAD"):
            return None
        if self.settings.disabled_for(req.target.split("?", 1)[0]):
            return None
        rcc = req.fields.get("cache-control")
        if rcc and "no-transform" in rcc and parse_cache_control(rcc).no_transform:
            # RFC 9111 5.2.1.6: identity; with Vary where other clients get a coding.
            if self._kind(entry) in ("text", "small"):
                return self.variants.same_body(entry, "identity", AE)
            return None
        kind = self._kind(entry)
        if kind == "image":
            return self._plan_image(entry, req, allow_jobs)
        if kind == "encoded":
            return self._plan_encoded(entry, req, allow_jobs)
        if kind in ("text", "small"):
            return self._plan_text(entry, req, allow_jobs, small=kind == "small")
        # Not ours to transform; still never send identity to a client refusing it.
        prefs = self._coding_prefs(req.fields.get("accept-encoding"))
        if prefs.present and not prefs.accepts(IDENTITY):
            return self._not_acceptable(entry)
        return None

    def _kind(self, entry: StoredResponse) -> str:
        """``encoded``, ``image``, ``text`` (compressible), ``small`` (compressible type,
        below ``min_bytes``) or ``fixed``."""
        f = entry.fields
        if "content-encoding" in f and compress.content_codings(f["content-encoding"]):
            return "encoded"
        if entry.cc.no_transform or "content-range" in f:
            return "fixed"
        kind: str = _memo(self._type_memo, f.get("content-type", ""), self._type_kind)
        if kind == "text":
            size = len(entry.body)
            if size > self.settings.compression.max_bytes:
                return "fixed"
            if size < self.settings.compression.min_bytes:
                return "small"
        return kind

    def _type_kind(self, content_type: str) -> str:
        mtype = compress.media_type(content_type)
        if mtype in images.SOURCE_FORMATS:
            return "image" if self.settings.images.enabled else "fixed"
        c = self.settings.compression
        if c.enabled and self.codings and compress.type_matches(mtype, c.types):
            return "text"
        return "fixed"

    def _coding_prefs(self, value: str | None) -> CodingPrefs:
        prefs: CodingPrefs = _memo(self._ae_memo, value, coding_prefs)
        return prefs

    def _not_acceptable(self, entry: StoredResponse) -> StoredResponse:
        return self.variants.error(
            entry, 406, "Not Acceptable", "no acceptable content coding", vary=AE
        )

    def _plan_text(
        self, entry: StoredResponse, req: RequestView, allow_jobs: bool, *, small: bool
    ) -> _Step:
        prefs = self._coding_prefs(req.fields.get("accept-encoding"))
        identity_ok = prefs.accepts(IDENTITY)
        if small and (identity_ok or not prefs.present):
            # Too small to be worth a coding, and identity will do; still Vary, since a
            # client refusing identity gets a coding for the same URL (RFC 9110 12.5.5).
            return self.variants.same_body(entry, "identity", AE)
        size = len(entry.body)
        available: dict[str, int | None] = {IDENTITY: size}
        missing = False
        for c in self.codings:
            rec = self.variants.get(entry, c)
            if rec is None:
                missing = True
                if allow_jobs:
                    available[c] = None
            elif rec.variant is not None and (len(rec.variant.body) < size or not identity_ok):
                available[c] = len(rec.variant.body)
        if "range" in req.fields and identity_ok:
            choice: str | None = IDENTITY  # ranges are served from the identity bytes
        else:
            inm = req.fields.get("if-none-match")
            held = held_labels(inm, entry.etag, self.codings) if inm else frozenset()
            choice = choose_coding(prefs, available, prefer=held)
        if choice is None:
            if missing and not allow_jobs:
                return self._busy(entry)
            return self._not_acceptable(entry)
        if choice == IDENTITY:
            return self.variants.same_body(entry, "identity", AE)
        rec = self.variants.get(entry, choice)
        if rec is not None and rec.variant is not None:
            self.metrics.served_variant(choice)
            return rec.variant
        encode = compress.encoder(choice, self.settings.compression, size)
        spec = VariantSpec(choice, choice, AE, content_encoding=choice)
        # Only a smaller body is worth a variant, unless the client refuses identity.
        return self._job(entry, spec, encode, baseline=size if identity_ok else None)

    def _plan_encoded(self, entry: StoredResponse, req: RequestView, allow_jobs: bool) -> _Step:
        codings = compress.content_codings(entry.fields.get("content-encoding"))
        prefs = self._coding_prefs(req.fields.get("accept-encoding"))
        if prefs.present and all(prefs.accepts(c) for c in codings):
            return self.variants.same_body(entry, "pass", AE)  # never recompressed
        if (
            len(codings) == 1
            and codings[0] in compress.DECODABLE
            and not entry.cc.no_transform
            and prefs.accepts(IDENTITY)
        ):
            rec = self.variants.get(entry, "decoded")
            if rec is not None and rec.variant is not None:
                self.metrics.served_variant("decode")
                return rec.variant
            if rec is None:
                if not allow_jobs:
                    return self._busy(entry)
                coding, limit = codings[0], self.settings.compression.max_bytes
                spec = VariantSpec("decoded", "decode", AE)
                return self._job(entry, spec, lambda body: compress.decode(coding, body, limit))
        if not prefs.present:
            # Without Accept-Encoding any coding is acceptable (RFC 9110 12.5.3).
            return self.variants.same_body(entry, "pass", AE)
        return self._not_acceptable(entry)

    def _plan_image(self, entry: StoredResponse, req: RequestView, allow_jobs: bool) -> _Step:
        s = self.settings.images
        width: int | None = None
        if "?" in req.target:
            _, rr = images.split_target(req.target, s)
            if rr is not None:
                problem = images.verify(rr, s)
                if problem is None:
                    width = rr.width
                elif s.unsigned == "reject":
                    return self.variants.error(entry, 400, "Bad Request", problem)
        meta = self._image_meta(entry)
        if meta.outcome != "meta":
            if width is not None:
                return self.variants.error(entry, 422, "Unprocessable Content", meta.info)
            return self.variants.same_body(entry, "orig", "Accept")
        fmt, w0, _ = meta.info
        if width is not None and width >= w0:
            width = None  # never enlarged: the original is that image
        if width is None and "range" in req.fields:
            return self.variants.same_body(entry, "orig", "Accept")
        base: Record | None = None
        if width is not None:
            base = self.variants.get(entry, f"w{width}")
            if base is None:
                if not allow_jobs:
                    return self.variants.same_body(entry, "orig", "Accept")
                spec = VariantSpec(f"w{width}", fmt, "Accept")
                return self._job(entry, spec, self._renderer(fmt, width))
            if base.variant is None:
                return self.variants.error(entry, 422, "Unprocessable Content", base.info)
        prefs: MediaPrefs = _memo(self._accept_memo, req.fields.get("accept"), media_prefs)
        for out in rank_image_formats(prefs, fmt, self.image_formats):
            if out == fmt:
                break
            label = out if width is None else f"w{width}-{out}"
            rec = self.variants.get(entry, label)
            if rec is not None and rec.variant is not None:
                self.metrics.served_variant(out)
                return rec.variant
            if rec is None and allow_jobs:
                baseline = len(
                    entry.body if base is None or base.variant is None else base.variant.body
                )
                spec = VariantSpec(label, out, "Accept", content_type=f"image/{out}")
                return self._job(entry, spec, self._renderer(out, width), baseline=baseline)
        if base is not None and base.variant is not None:
            self.metrics.served_variant(fmt)
            return base.variant
        return self.variants.same_body(entry, "orig", "Accept")

    def _image_meta(self, entry: StoredResponse) -> Record:
        """Format and dimensions from the header (cached), or why the image is refused."""
        rec = self.variants.get(entry, "#meta")
        if rec is not None:
            return rec
        spec = VariantSpec("#meta", "meta", "Accept", mode="meta")
        try:
            return self.variants.add(
                entry, spec, None, "meta", images.check(entry.body, self.settings.images)
            )
        except images.ImageError as exc:
            mtype = compress.media_type(entry.fields.get("content-type"))
            refused = isinstance(exc, images.ImageRefused)
            self.metrics.result(images.SOURCE_FORMATS[mtype], "refused" if refused else "error")
            return self.variants.add(entry, spec, None, "refused", str(exc))

    def _renderer(self, out: str, width: int | None) -> Callable[[bytes], bytes]:
        s = self.settings.images
        return lambda body: images.render(body, out, width, s).body

    def _busy(self, entry: StoredResponse) -> StoredResponse:
        return self.variants.error(
            entry,
            503,
            "Service Unavailable",
            "encoders busy, retry",
            vary=AE,
            extra=(("Retry-After", "1"),),
        )

    # jobs -------------------------------------------------------------------------------
    def _job(
        self,
        entry: StoredResponse,
        spec: VariantSpec,
        fn: Callable[[bytes], bytes],
        *,
        baseline: int | None = None,
    ) -> _Job:
        body, metrics, kind = entry.body, self.metrics, spec.kind

        def work() -> _Outcome:  # in a worker thread
            start = time.thread_time()
            try:
                out = fn(body)
            except images.ImageRefused as exc:
                return _Outcome(None, "refused", str(exc))
            except (images.ImageError, compress.EncodeError) as exc:
                return _Outcome(None, "error", str(exc))
            metrics.encoded(kind, len(body), len(out), time.thread_time() - start)
            if baseline is not None and len(out) >= baseline:
                return _Outcome(None, "larger")
            return _Outcome(out, "ok")

        # id(body): the job holds the body, so the id is unique while it runs; entries
        # sharing one body (after a 304 refresh) share the job.
        return _Job((id(body), entry.key, entry.vary_key, spec.label), spec, work)

    def _store(self, entry: StoredResponse, job: _Job, o: _Outcome) -> None:
        """Record a finished job (on the event loop, once per job)."""
        self.metrics.result(job.spec.kind, o.outcome)
        if o.outcome == "refused":
            # Over the image limits: later requests are answered at once.
            meta = VariantSpec("#meta", "meta", "Accept", mode="meta")
            self.variants.add(entry, meta, None, "refused", o.message)
        self.variants.add(entry, job.spec, o.body, o.outcome, o.message)


def create_transformer(
    settings: OptimizeSettings, *, via: str, registry: CollectorRegistry, tier: str = "edge"
) -> Transformer:
    """A :class:`Transformer` with its own :class:`EncodePool` and metrics on
    ``registry``; close it with :meth:`Transformer.aclose` at shutdown."""
    pool = EncodePool(settings.pool.workers, settings.pool.max_pending)
    return Transformer(settings, via=via, pool=pool, metrics=OptimizeMetrics(registry, tier))
