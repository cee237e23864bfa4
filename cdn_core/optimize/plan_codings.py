"""Planning content codings: compressing compressible responses, passing or decoding
origin-encoded ones (RFC 9110 8.4 and 12.5.3; see :mod:`.transform` for what is chosen).
"""

from __future__ import annotations

from cdn_core.optimize import compress
from cdn_core.optimize.etag import held_labels
from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.optimize.negotiate import IDENTITY, CodingPrefs, choose_coding, coding_prefs
from cdn_core.optimize.plan import AE, RequestView, Step, make_job, memo
from cdn_core.optimize.settings import CompressionSettings
from cdn_core.optimize.variants import VariantCache, VariantSpec
from cdn_core.store.entry import StoredResponse


class CodingPlanner:
    """Chooses the coding of one response for one request; ``codings`` are the ones
    this node can make, in preference order."""

    def __init__(
        self,
        settings: CompressionSettings,
        codings: tuple[str, ...],
        variants: VariantCache,
        metrics: OptimizeMetrics,
    ) -> None:
        self.settings = settings
        self.codings = codings
        self.variants = variants
        self.metrics = metrics
        self._ae_memo: dict[str | None, CodingPrefs] = {}

    def prefs(self, value: str | None) -> CodingPrefs:
        """The parsed ``Accept-Encoding`` value (memoised)."""
        prefs: CodingPrefs = memo(self._ae_memo, value, coding_prefs)
        return prefs

    def not_acceptable(self, entry: StoredResponse) -> StoredResponse:
        """406: the client refuses every coding we could send (RFC 9110 15.5.7)."""
        return self.variants.error(
            entry, 406, "Not Acceptable", "no acceptable content coding", vary=AE
        )

    def busy(self, entry: StoredResponse) -> StoredResponse:
        """503 with ``Retry-After``: the encoders are busy and identity is refused."""
        return self.variants.error(
            entry,
            503,
            "Service Unavailable",
            "encoders busy, retry",
            vary=AE,
            extra=(("Retry-After", "1"),),
        )

    def plan_text(
        self, entry: StoredResponse, req: RequestView, allow_jobs: bool, *, small: bool
    ) -> Step:
        """A compressible identity response (``small``: below ``min_bytes``)."""
        prefs = self.prefs(req.fields.get("accept-encoding"))
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
                return self.busy(entry)
            return self.not_acceptable(entry)
        if choice == IDENTITY:
            return self.variants.same_body(entry, "identity", AE)
        rec = self.variants.get(entry, choice)
        if rec is not None and rec.variant is not None:
            self.metrics.served_variant(choice)
            return rec.variant
        encode = compress.encoder(choice, self.settings, size)
        spec = VariantSpec(choice, choice, AE, content_encoding=choice)
        # Only a smaller body is worth a variant, unless the client refuses identity.
        return make_job(entry, spec, encode, self.metrics, baseline=size if identity_ok else None)

    def plan_encoded(self, entry: StoredResponse, req: RequestView, allow_jobs: bool) -> Step:
        """A response the origin sent with a ``Content-Encoding``: passed on, or decoded."""
        codings = compress.content_codings(entry.fields.get("content-encoding"))
        prefs = self.prefs(req.fields.get("accept-encoding"))
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
                    return self.busy(entry)
                coding, limit = codings[0], self.settings.max_bytes
                spec = VariantSpec("decoded", "decode", AE)
                return make_job(
                    entry, spec, lambda body: compress.decode(coding, body, limit), self.metrics
                )
        if not prefs.present:
            # Without Accept-Encoding any coding is acceptable (RFC 9110 12.5.3).
            return self.variants.same_body(entry, "pass", AE)
        return self.not_acceptable(entry)
