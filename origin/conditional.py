"""Server-side conditional requests (RFC 9110 13) and single byte ranges (RFC 9110 14).

Pure functions of request header values and the selected representation's validators;
no I/O, no clock (the caller passes ``now`` where one is needed). Times are integer
seconds since the epoch, the one-second resolution of an HTTP-date.

Why not let ``aiohttp.web.FileResponse`` do this: it treats an entity-tag ``If-Range`` as
absent (so a resumed download can splice two versions of a file), answers a multi-range
request with 416 although its ranges may be satisfiable, honours ``Range`` on HEAD, and
serves precompressed ``.gz``/``.br`` siblings, which is the edge's job in this system.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

# entity-tag = [ weak ] opaque-tag; opaque-tag = DQUOTE *etagc DQUOTE (RFC 9110 8.8.3)
_ETAG_RE = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')
# RFC 9110 14.1.1: ranges-specifier = range-unit "=" range-set; only "bytes" is known here.
_BYTES_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class EntityTag:
    """One entity-tag: ``opaque`` includes its double quotes (``'"abc"'``)."""

    opaque: str
    weak: bool = False


ANY = "*"


def parse_etag_list(value: str | None) -> tuple[EntityTag, ...] | str | None:
    """Parse an ``If-Match``/``If-None-Match`` value (RFC 9110 13.1.1, 13.1.2).

    Returns ``None`` when the field is absent, ``"*"`` for the wildcard, else the tags in
    order. A malformed member ends the list: what parsed before it is kept, so a broken
    ``If-None-Match`` can only cause a full response, and a broken ``If-Match`` a 412.
    """
    if value is None:
        return None
    text = value.strip()
    if text == ANY:
        return ANY
    tags: list[EntityTag] = []
    pos = 0
    while pos < len(text):
        m = _ETAG_RE.match(text, pos)
        if m is None:
            break
        tags.append(EntityTag(opaque=m.group(2), weak=m.group(1) is not None))
        pos = m.end()
    return tuple(tags)


def strong_match(a: EntityTag, b: EntityTag) -> bool:
    """RFC 9110 8.8.3.2 strong comparison: both strong and the opaque tags equal."""
    return not a.weak and not b.weak and a.opaque == b.opaque


def weak_match(a: EntityTag, b: EntityTag) -> bool:
    """RFC 9110 8.8.3.2 weak comparison: the opaque tags equal, weakness ignored."""
    return a.opaque == b.opaque


def parse_http_date(value: str | None) -> int | None:
    """An HTTP-date (RFC 9110 5.6.7; IMF-fixdate and the two obsolete forms) as integer
    epoch seconds, or ``None`` when absent or invalid (a recipient then ignores the
    field, RFC 9110 13.1.3 and 13.1.4)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        # The asctime form carries no zone; every HTTP-date is GMT (RFC 9110 5.6.7).
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


class Outcome(enum.Enum):
    """What the preconditions decide (RFC 9110 13.2.2)."""

    PROCEED = 200
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412


def evaluate_preconditions(
    *,
    method: str,
    etag: EntityTag,
    last_modified: int,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
) -> Outcome:
    """Evaluate the preconditions in the order RFC 9110 13.2.2 requires, for a
    representation that exists.

    ``etag`` is the current strong validator, ``last_modified`` its Last-Modified in epoch
    seconds; the ``if_*`` arguments are the raw field values (``None`` when absent).
    Steps: If-Match (strong comparison) else If-Unmodified-Since, either failing gives
    412; then If-None-Match (weak comparison) gives 304 on GET/HEAD and 412 otherwise;
    If-Modified-Since is evaluated only without If-None-Match and only on GET/HEAD.
    """
    safe = method in ("GET", "HEAD")
    im = parse_etag_list(if_match)
    if im is not None:
        if not isinstance(im, str) and not any(strong_match(t, etag) for t in im):
            return Outcome.PRECONDITION_FAILED
    else:
        ius = parse_http_date(if_unmodified_since)
        if ius is not None and last_modified > ius:
            return Outcome.PRECONDITION_FAILED
    inm = parse_etag_list(if_none_match)
    if inm is not None:
        if isinstance(inm, str) or any(weak_match(t, etag) for t in inm):
            return Outcome.NOT_MODIFIED if safe else Outcome.PRECONDITION_FAILED
    elif safe:
        ims = parse_http_date(if_modified_since)
        if ims is not None and last_modified <= ims:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def if_range_allows(value: str | None, *, etag: EntityTag, last_modified: int, now: int) -> bool:
    """Whether a Range request may be honoured given its ``If-Range`` (RFC 9110 13.1.5).

    Absent: yes. An entity-tag: only a strong match (a weak tag never matches). A date:
    only an exact match with a Last-Modified that is itself strong, i.e. at least one
    second older than ``now`` (RFC 9110 8.8.2.2). Anything else: no, so the full
    representation is sent.
    """
    if value is None:
        return True
    text = value.strip()
    if text.startswith(('"', "W/")):
        tags = parse_etag_list(text)
        return isinstance(tags, tuple) and len(tags) == 1 and strong_match(tags[0], etag)
    date = parse_http_date(text)
    return date is not None and date == last_modified and last_modified < now


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable single range: ``first``..``last`` inclusive byte offsets into a
    representation of ``length`` bytes (so ``Content-Range: bytes first-last/length``)."""

    first: int
    last: int
    length: int

    @property
    def size(self) -> int:
        """Number of bytes in the range."""
        return self.last - self.first + 1

    def content_range(self) -> str:
        """The ``Content-Range`` value of a 206 (RFC 9110 14.4)."""
        return f"bytes {self.first}-{self.last}/{self.length}"


class Unsatisfiable:
    """A syntactically valid range that selects nothing: answer 416 with
    ``Content-Range: bytes */length`` (RFC 9110 15.5.17)."""

    __slots__ = ()


UNSATISFIABLE = Unsatisfiable()


def parse_range(value: str | None, length: int) -> ByteRange | Unsatisfiable | None:
    """Interpret a ``Range`` value (RFC 9110 14.2) against a representation of ``length``
    bytes.

    Returns a :class:`ByteRange` for one satisfiable range, :data:`UNSATISFIABLE` for one
    that is not, and ``None`` when the field must or may be ignored (absent, an unknown
    unit, invalid syntax including ``last < first``, more than one range, or an empty
    representation, for which no range can be expressed): the caller then sends 200.
    """
    if value is None or length <= 0:
        return None
    m = _BYTES_RANGE_RE.match(value)
    if m is None:
        return None
    first_s, last_s = m.group(1), m.group(2)
    try:
        first = int(first_s) if first_s else None
        last = int(last_s) if last_s else None
    except ValueError:  # more digits than int() accepts: treat as invalid syntax
        return None
    if first is None:
        if last is None:
            return None
        # suffix-range: the final `last` bytes; a zero suffix selects nothing (14.1.3).
        if last == 0:
            return UNSATISFIABLE
        return ByteRange(first=max(0, length - last), last=length - 1, length=length)
    if last is not None and last < first:
        return None
    if first >= length:
        return UNSATISFIABLE
    end = length - 1 if last is None else min(last, length - 1)
    return ByteRange(first=first, last=end, length=length)
