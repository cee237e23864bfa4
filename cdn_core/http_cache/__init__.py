"""Pure RFC 9111 caching logic: no asyncio, no aiohttp, no I/O. Every function takes the
time it needs as an argument (``now``, seconds since the epoch).

Field values are passed as ``Fields``: a mapping from lower-case field name to the
field's combined value (field lines joined with ``", "``, RFC 9110 5.3).
"""

from collections.abc import Mapping

Fields = Mapping[str, str]

__all__ = ["Fields"]
