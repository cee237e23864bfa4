"""The service document: one site the CDN serves, with its domains, origins, cache rules,
cache-key rules, request and response rules, and feature toggles (issue 20). A version of
a service is one immutable document of this shape.

Shapes follow what Fastly, CloudFront and Varnish operators configure: rules are lists
evaluated in order, first match wins (cache rules, request rules), or all matches apply
in order (response header rules). Times are seconds. Field-level checks live here;
checks across fields and across services are in :mod:`cdn_core.services.validate`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from cdn_core.config import StrictModel

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
# A header field name (RFC 9110 5.1: token) and a value that cannot smuggle a line.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Fields a rule may never set or remove: framing and connection management belong to the
# proxy (RFC 9110 7.6.1, RFC 9112 6), and Host is the service's own choice (host_header).
PROTECTED_FIELDS = frozenset({
    "connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "te",
    "trailer", "proxy-connection", "host",
})  # fmt: skip


def is_domain(name: str) -> bool:
    """An exact host name (``www.example.com``) or a wildcard one label deep or more
    (``*.example.com``), lower case, without a port or trailing dot."""
    labels = name.removeprefix("*.").split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_LABEL.match(x) for x in labels)


def _fields(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not _TOKEN.match(name):
            raise ValueError(f"{name!r} is not a header field name")
        if name.lower() in PROTECTED_FIELDS:
            raise ValueError(f"{name} is managed by the proxy and cannot be set by a rule")
        if not _VALUE.match(text):
            raise ValueError(f"value of {name} has a control character or line break")
    return value


def _names(value: list[str]) -> list[str]:
    for name in value:
        if not _TOKEN.match(name):
            raise ValueError(f"{name!r} is not a header field name")
        if name.lower() in PROTECTED_FIELDS:
            raise ValueError(f"{name} is managed by the proxy and cannot be removed by a rule")
    return value


class Match(StrictModel):
    """Which requests (and, for cache and response rules, which responses) a rule applies
    to. Every condition given must hold; none given matches everything. Paths are the
    request target's path, before any rewrite."""

    path_prefix: str | None = Field(None, description="the path starts with this")
    glob: str | None = Field(
        None, description="fnmatch pattern over the path (`*` also crosses `/`)"
    )
    regex: str | None = Field(None, description="Python regular expression searched in the path")
    methods: list[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]] | None = (
        Field(None, min_length=1, description="request methods; null: any")
    )
    statuses: list[int] | None = Field(
        None, min_length=1, description="response status codes (cache and response rules)"
    )

    @field_validator("path_prefix", "glob")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("/", "*")):
            raise ValueError("must start with / (or * for a glob)")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"does not compile: {exc}") from None
        return value

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        for status in value or ():
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status code (100-599)")
        return value


class OriginServer(StrictModel):
    url: str = Field(description="http(s)://host[:port] of one origin server, no path")
    host_header: str | None = Field(
        None, description="Host sent to this origin; null: the client's (nginx proxy_set_header "
        "Host)"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r}: the scheme must be http or https")
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{value!r} must look like https://host:port (no path)")
        return value.rstrip("/")


class Origins(StrictModel):
    """The service's origin servers and how a mid tier chooses among them."""

    servers: list[OriginServer] = Field(min_length=1, description="one or more origins")
    selection: Literal["ordered", "rendezvous"] = Field(
        "ordered", description="ordered: the first healthy one (a primary and its replicas); "
        "rendezvous: spread keys over all of them"
    )
    connect_timeout: float = Field(2.0, gt=0, le=60, description="seconds")
    read_timeout: float = Field(30.0, gt=0, le=3600, description="seconds for the response")
    health_path: str | None = Field(None, description="path probed for active health checks")
    verify_tls: bool = Field(True, description="check https origins' certificates")
    shields: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] | None = Field(
        None, min_length=1, description="names of the mid tiers that shield this service "
        "(edges send its misses only to those of them that are registered); null: all")


class CacheRule(StrictModel):
    """What to do with the requests and responses ``match`` selects: cache them with a
    freshness lifetime (``ttl``, RFC 9111 4.2.1) and RFC 5861 extensions, either replacing
    what the origin says (``mode: override``) or only where it says nothing (``mode:
    default``); pass them to the origin without a lookup (``bypass``); or fetch them as
    usual but never store them (``no_store``)."""

    match: Match = Match()
    action: Literal["cache", "bypass", "no_store"] = "cache"
    mode: Literal["override", "default"] = "default"
    ttl: float | None = Field(None, ge=0, description="freshness lifetime, seconds")
    stale_while_revalidate: float | None = Field(None, ge=0, description="seconds (RFC 5861 3)")
    stale_if_error: float | None = Field(None, ge=0, description="seconds (RFC 5861 4)")

    @model_validator(mode="after")
    def _action(self) -> CacheRule:
        lifetimes = (self.ttl, self.stale_while_revalidate, self.stale_if_error)
        if self.action != "cache" and any(v is not None for v in lifetimes):
            raise ValueError(f"ttl and stale times do not go with action {self.action}")
        if self.action == "bypass" and self.match.statuses:
            raise ValueError("bypass is decided before any response: match.statuses cannot apply")
        return self


class QueryKey(StrictModel):
    """How the query string enters the cache key."""

    mode: Literal["whole", "sorted", "allow", "deny", "ignore"] = Field(
        "whole", description="whole: as sent; sorted: parameters sorted; allow: only `names`; "
        "deny: all but `names`; ignore: no query in the key"
    )
    names: list[str] = Field(
        default_factory=list, description="parameter names or fnmatch patterns (utm_*)"
    )

    @model_validator(mode="after")
    def _names_needed(self) -> QueryKey:
        if self.mode in ("allow", "deny") and not self.names:
            raise ValueError(f"mode {self.mode} needs names")
        if self.mode not in ("allow", "deny") and self.names:
            raise ValueError(f"names go with mode allow or deny, not {self.mode}")
        return self


class CacheKey(StrictModel):
    """The cache key beyond the service, scheme, host and path (always in it)."""

    query: QueryKey = QueryKey()
    headers: list[str] = Field(default_factory=list, description="request fields added")
    cookies: list[str] = Field(default_factory=list, description="cookie names added")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: list[str]) -> list[str]:
        return _names(value)


class Redirect(StrictModel):
    status: Literal[301, 302, 307, 308] = 301
    to: str | None = Field(None, description="path (or absolute URL) to redirect to")
    https: bool = Field(False, description="redirect http requests to the same URL over https")
    keep_query: bool = Field(True, description="append the request's query to `to`")

    @model_validator(mode="after")
    def _one(self) -> Redirect:
        if (self.to is None) == (not self.https):
            raise ValueError("a redirect has either `to` or `https: true`")
        if self.to is not None and not self.to.startswith(("/", "http://", "https://")):
            raise ValueError("`to` must be a path or an absolute http(s) URL")
        if self.to is not None and not re.match(r"^[\x21-\x7e]+$", self.to):
            raise ValueError("`to` must be visible ASCII without spaces (percent-encode)")
        return self


class Rewrite(StrictModel):
    prefix: str = Field(description="path prefix replaced", pattern=r"^/")
    to: str = Field(description="what replaces it toward the origin", pattern=r"^/")


class _FieldEdits(StrictModel):
    """What request and response rules share: a match and the fields set and removed."""

    match: Match = Match()
    set_headers: dict[str, str] = Field(default_factory=dict)
    remove_headers: list[str] = Field(default_factory=list)

    @field_validator("set_headers")
    @classmethod
    def _set(cls, value: dict[str, str]) -> dict[str, str]:
        return _fields(value)

    @field_validator("remove_headers")
    @classmethod
    def _remove(cls, value: list[str]) -> list[str]:
        return _names(value)


class RequestRule(_FieldEdits):
    """A change to matching requests before the cache: a redirect answered at the edge
    (and cached by no one), or fields set/removed and a path rewrite toward the origin.
    Redirect rules stop evaluation; the others all apply, in order."""

    redirect: Redirect | None = None
    rewrite: Rewrite | None = None

    @model_validator(mode="after")
    def _something(self) -> RequestRule:
        if self.match.statuses:
            raise ValueError("request rules run before any response: no match.statuses")
        changes = self.set_headers or self.remove_headers or self.rewrite
        if self.redirect is not None and changes:
            raise ValueError("a redirect rule cannot also change the request")
        if self.redirect is None and not changes:
            raise ValueError("the rule changes nothing")
        return self


class ResponseRule(_FieldEdits):
    """Fields set or removed on matching responses toward clients (HSTS, CORS,
    Cache-Control for browsers); every matching rule applies, in order. The stored
    response is never changed."""

    @model_validator(mode="after")
    def _something(self) -> ResponseRule:
        if not (self.set_headers or self.remove_headers):
            raise ValueError("the rule changes nothing")
        return self


class Features(StrictModel):
    """Per-service switches of what the edges do beside caching (each only where the
    edge's own ``optimize`` settings turn it on)."""

    compression: bool = Field(True, description="br/gzip variants of compressible types")
    image_optimisation: bool = Field(True, description="AVIF/WebP variants and resizes")
    signed_url_prefixes: list[str] = Field(
        default_factory=list, description="paths that need a signed URL (403 without), with "
        "the edges' signing keys (cdnctl signing)")

    @field_validator("signed_url_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith("/") or any(ch.isspace() for ch in prefix):
                raise ValueError(f"{prefix!r} must start with / and have no spaces")
        return value


class ServiceSpec(StrictModel):
    """One service: everything a version of it says."""

    name: str = Field(pattern=NAME, description="lower-case name; part of every cache key")
    domains: list[str] = Field(min_length=1, description="exact names and *.wildcards")
    origins: Origins
    cache_rules: list[CacheRule] = Field(
        default_factory=list, description="list of {match, action (cache, bypass, no_store), "
        "mode (default, override), ttl, stale_while_revalidate, stale_if_error}; first match "
        "wins (Fastly beresp.ttl, nginx proxy_cache_valid)")
    cache_key: CacheKey = CacheKey()
    request_rules: list[RequestRule] = Field(
        default_factory=list, description="list of {match, redirect {status, to | https, "
        "keep_query}, set_headers, remove_headers, rewrite {prefix, to}}: redirects answer "
        "at the edge (first match), the rest change what goes to the origin, in order")
    response_rules: list[ResponseRule] = Field(
        default_factory=list, description="list of {match, set_headers, remove_headers} "
        "applied by the edges to responses toward clients, every match in order (nginx "
        "add_header)")
    error_pages: dict[int, str] = Field(
        default_factory=dict, description="status -> body sent instead of the origin's"
    )
    features: Features = Features()

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            name = raw.strip().lower().rstrip(".")
            if not is_domain(name):
                raise ValueError(f"{raw!r} is not a host name or *.wildcard")
            if name in out:
                raise ValueError(f"{name} is listed twice")
            out.append(name)
        return out

    @field_validator("error_pages")
    @classmethod
    def _error_pages(cls, value: dict[int, str]) -> dict[int, str]:
        for status in value:
            if not 400 <= status <= 599:
                raise ValueError(f"{status}: error pages are for 4xx and 5xx statuses")
        return value
