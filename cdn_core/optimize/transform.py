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

- Compressible responses (:mod:`.compress`) between ``min_bytes`` and ``max_bytes``:
  the coding from :mod:`.negotiate`; the identity for clients that take no coding we
  make, for ``Range`` requests (ranges are served from the identity bytes), and while a
  coding is not smaller than the identity; all with ``Vary: Accept-Encoding``. A client
  listing a current variant tag in ``If-None-Match`` is given that variant when it
  accepts it, so the node answers 304.
- Origin-encoded responses in one coding we can decode (gzip, deflate, br) and without
  ``no-transform``: passed through to clients accepting the coding, decoded for the
  others (within ``compression.max_bytes``), with ``Vary: Accept-Encoding``; as stored
  when decoding is impossible, never 406.
- JPEG/PNG/GIF: AVIF/WebP when named in ``Accept`` and smaller, else the original, all
  with ``Vary: Accept``; a validly signed ``?w=`` resizes (never enlarges).
- Anything else (bodies under ``min_bytes``, types never compressed, ``no-transform``
  responses, codings we cannot decode): ``None``. The edge does not vary these, so it
  adds no ``Vary`` and keeps the origin's own as sent (RFC 9110 12.5.5).

Variants live in a :class:`~cdn_core.optimize.variants.VariantCache`, tied to their
source entry object (see there).
"""

from __future__ import annotations

import asyncio
import enum

from prometheus_client import CollectorRegistry

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.optimize import compress, images
from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.optimize.plan import AE, Job, Outcome, RequestView, Step, memo
from cdn_core.optimize.plan_codings import CodingPlanner
from cdn_core.optimize.plan_images import ImagePlanner
from cdn_core.optimize.pool import EncodePool, PoolBusy, PoolClosed
from cdn_core.optimize.settings import OptimizeSettings
from cdn_core.optimize.variants import VariantCache
from cdn_core.store.entry import StoredResponse


class Pending(enum.Enum):
    NEEDS_ENCODING = "needs-encoding"


NEEDS_ENCODING = Pending.NEEDS_ENCODING
LookupResult = StoredResponse | Pending | None


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
        codings = tuple(x for x in c.codings if x in compress.available_codings())
        enc = images.encoders_available()
        formats = tuple(f for f in settings.images.formats if enc.get(f))
        self.codings = CodingPlanner(c, codings, self.variants, metrics)
        self.images = ImagePlanner(settings.images, formats, self.variants, metrics)
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
        if isinstance(step, Job):
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
            if not isinstance(step, Job):
                return step
            job = step

            def store(o: Outcome, job: Job = job) -> None:
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
        if meta.cc.no_transform or "content-range" in f:
            return False
        if "content-encoding" in f and compress.content_codings(f["content-encoding"]):
            return _decodable(meta)  # a client that does not accept it gets it decoded
        kind: str = memo(self._type_memo, f.get("content-type", ""), self._type_kind)
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
        assert not isinstance(step, Job)
        return step

    def _plan(self, entry: StoredResponse, req: RequestView, *, allow_jobs: bool) -> Step:
        if entry.status != 200 or req.method not in ("GET", "HEAD"):
            return None
        if self.settings.disabled_for(req.target.split("?", 1)[0]):
            return None
        rcc = req.fields.get("cache-control")
        if rcc and "no-transform" in rcc and parse_cache_control(rcc).no_transform:
            # RFC 9111 5.2.1.6: as stored; with Vary where other clients get a coding.
            if self._kind(entry) in ("text", "encoded"):
                return self.variants.same_body(entry, "identity", AE)
            return None
        kind = self._kind(entry)
        if kind == "image":
            return self.images.plan(entry, req, allow_jobs)
        if kind == "encoded":
            return self.codings.plan_encoded(entry, req, allow_jobs)
        if kind == "text":
            return self.codings.plan_text(entry, req, allow_jobs)
        # Not ours to transform, so the same bytes for every client: identity even to a
        # client refusing it (RFC 9110 12.5.3 "SHOULD", as nginx and Varnish do), rather
        # than a 406 that the unvaried 200 beside it would contradict.
        return None

    def _kind(self, entry: StoredResponse) -> str:
        """``encoded`` (one coding we can decode), ``image``, ``text`` (compressible, size
        within ``min_bytes``..``max_bytes``) or ``fixed`` (sent as stored)."""
        f = entry.fields
        if entry.cc.no_transform or "content-range" in f:
            return "fixed"
        if "content-encoding" in f and compress.content_codings(f["content-encoding"]):
            return "encoded" if _decodable(entry) else "fixed"
        kind: str = memo(self._type_memo, f.get("content-type", ""), self._type_kind)
        if kind == "text":
            size = len(entry.body)
            c = self.settings.compression
            if size > c.max_bytes or size < c.min_bytes:
                return "fixed"
        return kind

    def _type_kind(self, content_type: str) -> str:
        mtype = compress.media_type(content_type)
        if mtype in images.SOURCE_FORMATS:
            return "image" if self.settings.images.enabled else "fixed"
        c = self.settings.compression
        if c.enabled and self.codings and compress.type_matches(mtype, c.types):
            return "text"
        return "fixed"

    # jobs ---------------------------------------------------------------------------------
    def _store(self, entry: StoredResponse, job: Job, o: Outcome) -> None:
        """Record a finished job (on the event loop, once per job)."""
        self.metrics.result(job.spec.kind, o.outcome)
        if o.outcome == "refused":
            self.images.refused(entry, o.message)
        self.variants.add(entry, job.spec, o.body, o.outcome, o.message)


def _decodable(entry: StoredResponse) -> bool:
    codings = compress.content_codings(entry.fields.get("content-encoding"))
    return len(codings) == 1 and codings[0] in compress.DECODABLE


def create_transformer(
    settings: OptimizeSettings, *, via: str, registry: CollectorRegistry, tier: str = "edge"
) -> Transformer:
    """A :class:`Transformer` with its own :class:`EncodePool` and metrics on
    ``registry``; close it with :meth:`Transformer.aclose` at shutdown."""
    pool = EncodePool(settings.pool.workers, settings.pool.max_pending)
    return Transformer(settings, via=via, pool=pool, metrics=OptimizeMetrics(registry, tier))
