"""Content-Type by file extension.

The web types are pinned here rather than taken from the host's ``/etc/mime.types``, so
every host labels ``.js`` or ``.webp`` the same way (caches key on these bytes); anything
else falls back to :mod:`mimetypes`, then ``application/octet-stream``. Text types carry
``charset=utf-8`` because the site is written in UTF-8.
"""

from __future__ import annotations

import mimetypes
import posixpath

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".xml": "application/xml",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
}

FALLBACK = "application/octet-stream"


def content_type(relpath: str) -> str:
    """The ``Content-Type`` value for a ``/``-separated path (``"css/site.css"``)."""
    ext = posixpath.splitext(relpath)[1].lower()
    known = _TYPES.get(ext)
    if known is not None:
        return known
    guessed, encoding = mimetypes.guess_type(relpath, strict=True)
    # A ".gz" file is opaque bytes to us: never label it as its inner type.
    if guessed is None or encoding is not None:
        return FALLBACK
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed
