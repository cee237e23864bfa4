"""Cache-control fields aimed at a class of caches rather than at every cache.

- RFC 9213 targeted fields (``CDN-Cache-Control`` and tier-specific names such as
  ``Edge-Cache-Control``): the value is a Structured Field Dictionary (RFC 8941 3.2). A
  value that does not parse as one is ignored as a whole, as if the field were absent, so
  the cache falls back to the next field or to ``Cache-Control`` (RFC 9213 2.1). Within a
  valid value, a directive whose value has the wrong type (``max-age="60"``,
  ``max-age=1.5``) is ignored.
- ``Surrogate-Control`` (W3C Edge Architecture 1.0), for operators who list it among the
  targeted fields: comma-separated directives, each optionally aimed at one device with
  ``;device``. Directives aimed at a device are for some other surrogate (we advertise no
  ``Surrogate-Capability``) and are ignored; of the others, ``max-age`` and ``no-store``
  are understood.

Both parsers return ``None`` when nothing in the field applies to us, so that the caller
moves on to the next source of caching policy.
"""

from __future__ import annotations

import binascii

from cdn_core.http_cache.cache_control import CacheControl, split_list

_MAX_DELTA = 2**31
_DELTA = {
    "max-age": "max_age",
    "s-maxage": "s_maxage",
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
}
_FLAGS = {
    "no-store": "no_store",
    "no-transform": "no_transform",
    "must-revalidate": "must_revalidate",
    "proxy-revalidate": "proxy_revalidate",
    "must-understand": "must_understand",
    "public": "public",
    "immutable": "immutable",
}


class _Fail(Exception):
    """The value is not a Structured Field Dictionary."""


class _Str(str):
    """An sf-string (as opposed to an sf-token, which stays a plain ``str``)."""


_LCALPHA = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_KEY_REST = _LCALPHA | _DIGITS | frozenset("_-.*")
_ALPHA = _LCALPHA | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TCHAR = _ALPHA | _DIGITS | frozenset("!#$%&'*+-.^_`|~")
_TOKEN_REST = _TCHAR | frozenset(":/")
_B64 = _ALPHA | _DIGITS | frozenset("+/=")


class _Parser:
    """RFC 8941 4.2 parsing of a Dictionary, just far enough to tell valid from invalid and
    to read Integers, Strings, Tokens and Booleans."""

    __slots__ = ("s", "i")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def key(self) -> str:
        start = self.i
        if self.peek() not in _LCALPHA and self.peek() != "*":
            raise _Fail
        self.i += 1
        while self.peek() in _KEY_REST:
            self.i += 1
        return self.s[start : self.i]

    def params(self) -> None:
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            self.key()
            if self.peek() == "=":
                self.i += 1
                self.bare_item()

    def bare_item(self) -> object:
        c = self.peek()
        if c == "-" or c in _DIGITS:
            return self.number()
        if c == '"':
            return self.string()
        if c == "*" or c in _ALPHA:
            start = self.i
            self.i += 1
            while self.peek() in _TOKEN_REST:
                self.i += 1
            return self.s[start : self.i]
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end == -1 or not set(self.s[self.i + 1 : end]) <= _B64:
                raise _Fail
            try:
                data = binascii.a2b_base64(self.s[self.i + 1 : end])
            except binascii.Error as exc:
                raise _Fail from exc
            self.i = end + 1
            return data
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise _Fail
            self.i += 2
            return flag == "1"
        raise _Fail

    def number(self) -> int | float:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        if self.peek() not in _DIGITS:
            raise _Fail
        while self.peek() in _DIGITS or self.peek() == ".":
            self.i += 1
        text = self.s[start : self.i]
        digits = text.lstrip("-")
        if "." not in digits:
            if len(digits) > 15:
                raise _Fail
            return int(text)
        whole, _, frac = digits.partition(".")
        if len(whole) > 12 or not 1 <= len(frac) <= 3 or "." in frac:
            raise _Fail
        return float(text)

    def string(self) -> _Str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.s[self.i : self.i + 1]
                if nxt not in ('"', "\\"):
                    raise _Fail
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return _Str("".join(out))
            elif not " " <= c <= "~":
                raise _Fail
            else:
                out.append(c)
        raise _Fail

    def member_value(self) -> object:
        if self.peek() != "(":
            value = self.bare_item()
            self.params()
            return value
        self.i += 1
        items: list[object] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                self.params()
                return items
            items.append(self.bare_item())
            self.params()
            if self.peek() not in (" ", ")"):
                raise _Fail

    def dictionary(self) -> dict[str, object]:
        out: dict[str, object] = {}
        while True:
            name = self.key()
            if self.peek() == "=":
                self.i += 1
                out[name] = self.member_value()
            else:
                out[name] = True
                self.params()
            self.skip(" \t")
            if self.i >= len(self.s):
                return out
            if self.peek() != ",":
                raise _Fail
            self.i += 1
            self.skip(" \t")
            if self.i >= len(self.s):
                raise _Fail  # a trailing comma


def parse_sf_dictionary(value: str) -> dict[str, object] | None:
    """The members of a Structured Field Dictionary (last duplicate wins), or ``None`` when
    ``value`` is empty or not a valid Dictionary. Values are ``int``, ``float``, ``bool``,
    ``bytes``, plain ``str`` (Tokens), :class:`_Str` (Strings) or lists (Inner Lists);
    parameters are validated and dropped."""
    value = value.strip(" ")
    if not value:
        return None
    try:
        return _Parser(value).dictionary()
    except _Fail:
        return None


def _field_names(value: object) -> frozenset[str] | None:
    if isinstance(value, _Str):
        return frozenset(f.strip().lower() for f in value.split(",") if f.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(str(v).lower() for v in value)
    return None


def parse_targeted(value: str | None) -> CacheControl | None:
    """Directives of an RFC 9213 targeted field, or ``None`` when the field must be ignored
    (absent, empty, or not a valid Dictionary)."""
    members = parse_sf_dictionary(value or "")
    if members is None:
        return None
    kw: dict[str, object] = {}
    for name, v in members.items():
        if name in _DELTA:
            if type(v) is int and v >= 0:
                kw[_DELTA[name]] = min(v, _MAX_DELTA)
        elif name in _FLAGS:
            if v is True:
                kw[_FLAGS[name]] = True
        elif name in ("no-cache", "private"):
            if v is False:
                continue
            fields = None if v is True else _field_names(v)
            if fields:
                kw[name.replace("-", "_") + "_fields"] = fields
            else:
                # Unqualified, or qualified in a way we cannot read: the stricter meaning.
                kw[name.replace("-", "_")] = True
    return CacheControl(**kw)  # type: ignore[arg-type]


def parse_surrogate_control(value: str | None) -> CacheControl | None:
    """The ``Surrogate-Control`` directives meant for every surrogate (see the module
    docstring), or ``None`` when none of them is one we understand."""
    if not value:
        return None
    kw: dict[str, object] = {}
    for item in split_list(value):
        directive, semi, _device = item.partition(";")
        if semi:
            continue  # aimed at one particular device, not at us
        raw_name, eq, arg = directive.partition("=")
        name = raw_name.strip().lower()
        if name == "no-store" and not eq:
            kw["no_store"] = True
        elif name == "max-age" and eq:
            # max-age=freshness[+extension]; the optional second number is not used.
            seconds = arg.partition("+")[0]
            ok = seconds.isdigit() and seconds.isascii() and not raw_name[-1:].isspace()
            kw["max_age"] = min(int(seconds), _MAX_DELTA) if ok else 0
    return CacheControl(**kw) if kw else None  # type: ignore[arg-type]
