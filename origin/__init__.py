"""The origin: a static file server over a content directory (``python -m origin``).

It answers GET and HEAD with validators, conditional requests and byte ranges
(RFC 9110 13 and 14), per-path ``Cache-Control`` and ``Surrogate-Key`` from its config,
and counts what it serves on its admin port so tests can prove the CDN tiers shield it.
"""
