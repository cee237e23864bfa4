"""Planning image variants: AVIF/WebP when named in ``Accept`` and smaller, signed
``?w=`` resizes that never enlarge, and the original otherwise, all with
``Vary: Accept`` (see :mod:`.transform`).
"""

from __future__ import annotations

from collections.abc import Callable

from cdn_core.optimize import compress, images
from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.optimize.negotiate import MediaPrefs, media_prefs, rank_image_formats
from cdn_core.optimize.plan import RequestView, Step, make_job, memo
from cdn_core.optimize.settings import ImageSettings
from cdn_core.optimize.variants import Record, VariantCache, VariantSpec
from cdn_core.store.entry import StoredResponse


class ImagePlanner:
    """Chooses the image variant of one JPEG/PNG/GIF response for one request;
    ``formats`` are the output formats this node can encode, in preference order."""

    def __init__(
        self,
        settings: ImageSettings,
        formats: tuple[str, ...],
        variants: VariantCache,
        metrics: OptimizeMetrics,
    ) -> None:
        self.settings = settings
        self.formats = formats
        self.variants = variants
        self.metrics = metrics
        self._accept_memo: dict[str | None, MediaPrefs] = {}

    def plan(self, entry: StoredResponse, req: RequestView, allow_jobs: bool) -> Step:
        s = self.settings
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
                return make_job(entry, spec, self._renderer(fmt, width), self.metrics)
            if base.variant is None:
                return self.variants.error(entry, 422, "Unprocessable Content", base.info)
        prefs: MediaPrefs = memo(self._accept_memo, req.fields.get("accept"), media_prefs)
        for out in rank_image_formats(prefs, fmt, self.formats):
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
                return make_job(
                    entry, spec, self._renderer(out, width), self.metrics, baseline=baseline
                )
        if base is not None and base.variant is not None:
            self.metrics.served_variant(fmt)
            return base.variant
        return self.variants.same_body(entry, "orig", "Accept")

    def refused(self, entry: StoredResponse, message: str) -> None:
        """Remember that ``entry`` is over the image limits, so later requests for it are
        answered at once."""
        meta = VariantSpec("#meta", "meta", "Accept", mode="meta")
        self.variants.add(entry, meta, None, "refused", message)

    def _image_meta(self, entry: StoredResponse) -> Record:
        """Format and dimensions from the header (cached), or why the image is refused."""
        rec = self.variants.get(entry, "#meta")
        if rec is not None:
            return rec
        spec = VariantSpec("#meta", "meta", "Accept", mode="meta")
        try:
            return self.variants.add(
                entry, spec, None, "meta", images.check(entry.body, self.settings)
            )
        except images.ImageError as exc:
            mtype = compress.media_type(entry.fields.get("content-type"))
            refused = isinstance(exc, images.ImageRefused)
            self.metrics.result(images.SOURCE_FORMATS[mtype], "refused" if refused else "error")
            return self.variants.add(entry, spec, None, "refused", str(exc))

    def _renderer(self, out: str, width: int | None) -> Callable[[bytes], bytes]:
        s = self.settings
        return lambda body: images.render(body, out, width, s).body
