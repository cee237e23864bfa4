"""API keys limited to services (issue 20: ``cdnctl keys create ci --role purger --service
shop``): such a key reads, changes and purges only its services, and gets 403 for
anything else, another service's routes and every route that is not about services.

- ``/v1/services...`` routes naming a service check :func:`require`; the list shows only
  the key's services;
- ``/v1/purges``: a limited key purges its services whole (type ``service``) or by URL,
  prefix or host of their active domains (:func:`active_hosts`); tag and whole-cache purges need
  an unlimited key; the purge log shows it only purges of its hosts;
- every other route refuses it (:data:`SCOPED_PREFIXES`, checked by the guard).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from cdn_core.services.matching import HostMap
from control_plane.api import STORE, ApiError
from control_plane.auth import PRINCIPAL

SCOPED_PREFIXES = ("/v1/services", "/v1/purges")


def limited_to(request: web.Request) -> frozenset[str] | None:
    """The services the caller's key is limited to; None for an unlimited caller."""
    who = request.get(PRINCIPAL)
    return who.services if who is not None else None


def refuse_elsewhere(services: frozenset[str] | None, path: str) -> None:
    """The guard's check: a limited key only reaches service and purge routes.

    Raises:
        ApiError: 403.
    """
    if services is not None and not path.startswith(SCOPED_PREFIXES):
        raise ApiError(403, f"this key is limited to services {', '.join(sorted(services))}: "
                       f"it may use /v1/services and /v1/purges only")


def require(request: web.Request, service: str) -> None:
    """Raises ApiError 403 when the caller's key is limited to other services."""
    scope = limited_to(request)
    if scope is not None and service not in scope:
        raise ApiError(403, f"this key is limited to services {', '.join(sorted(scope))}; "
                       f"not {service!r}")


async def active_hosts(request: web.Request) -> HostMap[str]:
    """Host name -> active service (exact beats wildcard), from the active versions."""
    domains: dict[str, str] = {}
    for version in await request.app[STORE].active_documents():
        for domain in version.document.get("domains", []):
            domains[domain] = version.service
    return HostMap(domains)


def service_of_host(hosts: HostMap[str], host: str) -> str | None:
    """The service of ``host`` in ``hosts`` (:func:`active_hosts`), or None."""
    return hosts.lookup(host.lower().rstrip("."))


def purge_host(kind: str, value: str | None) -> str | None:
    """The host a purge names (``url``/``prefix``: the URL's, ``host``: itself), else None."""
    if kind == "host":
        return value
    if kind in ("url", "prefix") and value:
        return urlsplit(value).hostname
    return None


async def check_purge(request: web.Request, kind: str, value: str | None) -> None:
    """A limited key's purge must name a host of one of its services.

    Raises:
        ApiError: 403 naming why.
    """
    scope = limited_to(request)
    if scope is None:
        return
    if kind == "service":
        if value not in scope:
            raise ApiError(403, f"this key is limited to services {', '.join(sorted(scope))}")
        return
    host = purge_host(kind, value)
    if host is None:
        raise ApiError(403, "a key limited to services purges by url, prefix or host only")
    service = service_of_host(await active_hosts(request), host)
    if service is None or service not in scope:
        raise ApiError(403, f"{host} is not a domain of {', '.join(sorted(scope))}")


async def visible_purges(request: web.Request, purges: list[Any]) -> list[Any]:
    """Of ``purges``, those a limited caller may see (its services' hosts)."""
    scope = limited_to(request)
    if scope is None:
        return purges
    hosts = await active_hosts(request)  # once for the whole list
    out = []
    for p in purges:
        if p.type == "service":
            if p.value in scope:
                out.append(p)
            continue
        host = purge_host(p.type, p.value)
        if host is not None and service_of_host(hosts, host) in scope:
            out.append(p)
    return out
