"""Primary cache keys (RFC 9111 2): scheme, host and request target, normalised so that
one resource has one key (RFC 3986 6.2.2) and a purge reaches every spelling of it.

The host is lower-cased, its trailing dot and port dropped, so that a purge of
``http://www.example.test/index.html`` matches what clients fetched through
``www.example.test.:8080`` (one site, whatever front port it was reached on). In the
target, percent-encoded unreserved characters are decoded (``%61`` is ``a``), other
percent-encodings get upper-case hex, dot segments are removed and an empty query
(``/a?``) is dropped. Empty path segments (``//a``) are kept: RFC 3986 gives them no
equivalence, and an origin may tell them apart.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

# RFC 3986 3.2.2 reg-name (unreserved, pct-encoded, sub-delims) or an IP literal, then
# an optional port.
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{1,5})?$")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(r"/{2,}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def valid_host(host: str) -> bool:
    """Whether a ``Host`` value is a syntactically valid ``uri-host [":" port]``
    (RFC 9110 7.2), and one: a comma is a reg-name character, but in a field value it is
    a repeated field joined (RFC 9110 5.3). A server answers 400 otherwise (RFC 9112
    3.2)."""
    if "," in host or not _HOST.match(host):
        return False
    _, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
    return not colon or not port.isdigit() or int(port) <= 65535


@functools.lru_cache(maxsize=4096)
def normalize_host(host: str) -> str:
    """Lower-case host without port or trailing dot; IPv6 literals keep their brackets.
    Memoised: a node sees the same few Host values over and over."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.split(":", 1)[0].rstrip(".")


def _pct(match: re.Match[str]) -> str:
    byte = int(match.group(1), 16)
    return chr(byte) if byte in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4, on the segments of an absolute path.
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def normalize_target(target: str) -> str:
    """The origin-form ``target`` in normal form (module docstring); cheap when there is
    nothing to do (no ``%``, no dot segment, no empty query)."""
    if "%" not in target and "/." not in target and not target.endswith("?"):
        return target
    path, q, query = target.partition("?")
    if "%" in path:
        path = _PCT.sub(_pct, path)
    if "/." in path:
        path = _remove_dot_segments(path)
    if "%" in query:
        query = _PCT.sub(_pct, query)
    return f"{path}?{query}" if q and query else path


def prefix_form(target: str) -> str:
    """``target`` as path-prefix policies compare it (signed URLs, rate limits): each run
    of slashes as one, lower case. An origin may read ``//Private/a`` as ``/private/a``,
    and a policy that covers more than it says is the safe side of that doubt."""
    if "//" in target:
        target = _SLASHES.sub("/", target)
    return target.lower()


def cache_key(scheme: str, host: str, target: str) -> str:
    """``scheme://host/path?query`` for a request (``target`` in origin-form, already
    normalised by :func:`normalize_target`)."""
    return primary_key(scheme, normalize_host(host), target)


def primary_key(scheme: str, host: str, target: str) -> str:
    """:func:`cache_key` for a ``host`` already through :func:`normalize_host`."""
    return f"{scheme}://{host}{target}"


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
    return cache_key(parts.scheme, parts.netloc.rsplit("@", 1)[-1], normalize_target(target))


def split_absolute(target: str) -> tuple[str, str]:
    """``(authority, origin-form target)`` of an absolute-form request target
    (RFC 9112 3.2.2: its authority replaces the ``Host`` field).

    Raises:
        ValueError: not an absolute http(s) URL with a host, an authority that is not a
            valid ``uri-host [":" port]`` (as :func:`valid_host` checks the Host field),
            or one with userinfo (RFC 9110 4.2.4: treated as an error).
    """
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {target!r}")
    if "@" in parts.netloc or not valid_host(parts.netloc):
        raise ValueError(f"not a valid authority: {parts.netloc!r}")
    path = parts.path or "/"
    return parts.netloc, path + ("?" + parts.query if parts.query else "")
