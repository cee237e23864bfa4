"""What the origin has served: counters for ``/status`` (per path, so the chain tests can
prove the tiers shield the origin) and Prometheus metrics (bounded labels only)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from cdn_core.metrics import MetricSet, status_class

# Methods outside this set share one label value, so a client cannot grow the label set.
_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)
OTHER_PATHS = "(other)"


def method_label(method: str) -> str:
    """``method`` if it is a standard one, else ``"OTHER"``."""
    return method if method in _KNOWN_METHODS else "OTHER"


class OriginStats:
    """Request counters. ``by_path`` keeps at most ``max_paths`` distinct request paths;
    later new paths are counted under ``"(other)"`` so probing cannot exhaust memory."""

    def __init__(self, registry: CollectorRegistry, *, max_paths: int) -> None:
        self.requests = 0
        self.by_path: dict[str, int] = {}
        self.by_method: dict[str, int] = {}
        self._max_paths = max_paths
        m = MetricSet(registry)
        self._requests = m.counter(
            "cdn_origin_requests_total",
            "Requests the origin answered, by method and status class.",
            ["method", "status_class"],
        )
        self._bytes = m.counter(
            "cdn_origin_response_bytes_total",
            "Response body bytes the origin sent (HEAD and 304 send none).",
        )

    def record(self, *, method: str, path: str, status: int) -> None:
        """Count one answered request (``path`` is the request path, query excluded)."""
        label = method_label(method)
        self.requests += 1
        self.by_method[label] = self.by_method.get(label, 0) + 1
        if path not in self.by_path and len(self.by_path) >= self._max_paths:
            path = OTHER_PATHS
        self.by_path[path] = self.by_path.get(path, 0) + 1
        self._requests.labels(label, status_class(status)).inc()

    def add_bytes(self, body_bytes: int) -> None:
        """Count response body bytes actually written."""
        if body_bytes:
            self._bytes.inc(body_bytes)

    def snapshot(self) -> dict[str, Any]:
        """``{"requests": int, "by_path": {path: int}, "by_method": {method: int}}``."""
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_method": dict(self.by_method),
        }
