"""Primary cache keys (RFC 9111 2): scheme, host and request target.

The host is lower-cased and its port dropped, so that a purge of
``http://www.example.test/index.html`` matches what clients fetched through
``www.example.test:8080`` (one site, whatever front port it was reached on).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def normalize_host(host: str) -> str:
    """Lower-case host without port; IPv6 literals keep their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.split(":", 1)[0]


def cache_key(scheme: str, host: str, target: str) -> str:
    """``scheme://host/path?query`` for a request (``target`` in origin-form)."""
    return f"{scheme}://{normalize_host(host)}{target}"


def key_from_url(url: str) -> str:
    """The primary cache key an absolute URL names (for purges and invalidation).

    Raises:
        ValueError: ``url`` is not an absolute http(s) URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return cache_key(parts.scheme, parts.netloc.rsplit("@", 1)[-1], target)
