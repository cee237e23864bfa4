"""Filling from upstream: the connection pool to the next tier or the origin (selection,
health, TLS verification), request collapsing and hit-for-miss, and the fill itself
(conditional fetches, 304 refresh, stale-if-error, storing what RFC 9111 3 allows while
the body streams to every waiting request).

May import: :mod:`cdn_core.node.settings`, :mod:`cdn_core.node.exchange`,
:mod:`cdn_core.node.observe`, :mod:`cdn_core.http_cache`, :mod:`cdn_core.store`.
"""
