"""Prometheus metrics of content optimisation, bound to a registry passed in.

Labels are bounded: ``tier``, ``kind`` (``br``, ``gzip``, ``zstd``, ``decode``,
``avif``, ``webp``, ``jpeg``, ``png``, ``gif``) and ``result``. Counters are
thread-safe, so encoder threads record their own bytes and CPU seconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from cdn_core.metrics import MetricSet

KINDS = ("br", "gzip", "zstd", "decode", "avif", "webp", "jpeg", "png", "gif")
# ok: variant made; larger: not smaller than the original, original kept; refused: over
# the image limits; error: encoder/decoder failed; busy: pool full, identity sent.
RESULTS = ("ok", "larger", "refused", "error", "busy")


class OptimizeMetrics:
    def __init__(self, registry: CollectorRegistry, tier: str = "edge") -> None:
        m = MetricSet(registry)
        self.bytes_in = m.counter(
            "cdn_optimize_bytes_in_total", "Bytes given to encoders", ["tier", "kind"]
        )
        self.bytes_out = m.counter(
            "cdn_optimize_bytes_out_total", "Bytes encoders produced", ["tier", "kind"]
        )
        self.cpu_seconds = m.counter(
            "cdn_optimize_cpu_seconds_total",
            "CPU seconds spent in encoders (worker thread time)",
            ["tier", "kind"],
        )
        self.transforms = m.counter(
            "cdn_optimize_transforms_total", "Encodes by outcome", ["tier", "kind", "result"]
        )
        self.served = m.counter(
            "cdn_optimize_variants_served_total",
            "Responses answered with a derived variant",
            ["tier", "kind"],
        )
        self.cache_bytes = m.gauge(
            "cdn_optimize_cache_bytes", "Bytes of derived variants held", ["tier"]
        ).labels(tier)
        self.cache_variants = m.gauge(
            "cdn_optimize_cache_variants", "Derived variants held", ["tier"]
        ).labels(tier)
        self._in = {k: self.bytes_in.labels(tier, k) for k in KINDS}
        self._out = {k: self.bytes_out.labels(tier, k) for k in KINDS}
        self._cpu = {k: self.cpu_seconds.labels(tier, k) for k in KINDS}
        self._served = {k: self.served.labels(tier, k) for k in (*KINDS, "identity", "original")}
        self._results = {(k, r): self.transforms.labels(tier, k, r) for k in KINDS for r in RESULTS}

    def encoded(self, kind: str, bytes_in: int, bytes_out: int, cpu_seconds: float) -> None:
        """One encode done (called from the worker thread)."""
        self._in[kind].inc(bytes_in)
        self._out[kind].inc(bytes_out)
        self._cpu[kind].inc(cpu_seconds)

    def result(self, kind: str, result: str) -> None:
        self._results[(kind, result)].inc()

    def served_variant(self, kind: str) -> None:
        self._served[kind].inc()
