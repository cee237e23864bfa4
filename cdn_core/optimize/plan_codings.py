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

    def plan_text(self, entry: StoredResponse, req: RequestView, allow_jobs: bool) -> Step:
        """A compressible identity response between ``min_bytes`` and ``max_bytes``: the
        edge chooses a coding per client, so every answer carries ``Vary: Accept-Encoding``
        (RFC 9110 12.5.5); 406 only when the client refuses identity and every coding."""
        prefs = self.prefs(req.fields.get("accept-encoding"))
        identity_ok = prefs.accepts(IDENTITY)
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
        """A response the origin sent in one coding this node can decode (and without
        ``no-transform``): passed on to clients that accept the coding, decoded for
        clients that do not or send no ``Accept-Encoding``, both with ``Vary:
        Accept-Encoding``. The origin chose the coding, so when decoding is impossible
        (the client refuses identity too, the body is over ``max_bytes``, the decoder
        failed, the encoders are busy) the stored bytes go as they are: never a 406
        (RFC 9110 12.5.3 lets a server send a coding the client did not list)."""
        codings = compress.content_codings(entry.fields.get("content-encoding"))
        prefs = self.prefs(req.fields.get("accept-encoding"))
        passed = self.variants.same_body(entry, "pass", AE)
        if (prefs.present and all(prefs.accepts(c) for c in codings)) or not prefs.accepts(
            IDENTITY
        ):
            return passed  # never recompressed
        rec = self.variants.get(entry, "decoded")
        if rec is not None:
            if rec.variant is None:
                return passed  # decoding failed or was refused: as stored
            self.metrics.served_variant("decode")
            return rec.variant
        if not allow_jobs:
            return passed
        coding, limit = codings[0], self.settings.max_bytes
        spec = VariantSpec("decoded", "decode", AE)
        decode = lambda body: compress.decode(coding, body, limit)  # noqa: E731
        return make_job(entry, spec, decode, self.metrics)
