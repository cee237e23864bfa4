"""Configuration of the router (``configs/router.yaml``). Every default here equals the
value in that file, so the router also runs without one. Flags override the file
(``--edge`` replaces ``edges``), and so do ``CDN_ROUTER__A__B=v`` environment variables.

Units: seconds for times, milliseconds for round-trip times, fractions of one CPU core for
CPU use, requests for in-flight counts.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from cdn_core.config import StrictModel
from cdn_core.errors import ConfigError

_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def normalize_domain(name: str) -> str:
    """``"WWW.Example.Test."`` -> ``"www.example.test"``; raises ValueError for a name that is
    not a valid hostname-like domain (RFC 1035 2.3.4: labels of 1-63 octets, 255 in all)."""
    text = name.strip().rstrip(".").lower()
    if not text or len(text) > 253 or not all(_LABEL.match(p) for p in text.split(".")):
        raise ValueError(f"{name!r} is not a valid domain name")
    return text


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address") from exc


class SoaSettings(StrictModel):
    """The zone's SOA record (RFC 1035 3.3.13); ``minimum`` is the negative-caching TTL
    (RFC 2308 4), seconds."""

    mname: str = "ns1.example.test"
    rname: str = Field(default="hostmaster.example.test", description="mailbox, first dot is the @")
    serial: int = Field(default=2024010101, ge=0, le=2**32 - 1)
    refresh: int = Field(default=3600, ge=0)
    retry: int = Field(default=600, ge=0)
    expire: int = Field(default=604800, ge=0)
    minimum: int = Field(default=30, ge=0, description="negative-caching TTL, seconds")
    ttl: int = Field(default=3600, ge=0, description="TTL of the SOA record itself, seconds")

    @field_validator("mname", "rname")
    @classmethod
    def _names(cls, v: str) -> str:
        return normalize_domain(v)


class NameServerSettings(StrictModel):
    """An NS target of the zone and its addresses (glue when it lies inside the zone)."""

    name: str = "ns1.example.test"
    addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1"])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return normalize_domain(v)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        return [_ip(a) for a in v]


class ZoneSettings(StrictModel):
    """One zone we are authoritative for. ``services`` are the names answered with edge
    addresses (A for IPv4 edges, AAAA for IPv6 ones)."""

    name: str = "example.test"
    soa: SoaSettings = SoaSettings()
    nameservers: list[NameServerSettings] = Field(
        default_factory=lambda: [NameServerSettings()], min_length=1
    )
    ns_ttl: int = Field(default=3600, ge=0, description="TTL of NS and glue records, seconds")
    services: list[str] = Field(default_factory=lambda: ["www.example.test"])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return normalize_domain(v)

    @field_validator("services")
    @classmethod
    def _services(cls, v: list[str]) -> list[str]:
        return [normalize_domain(s) for s in v]

    @model_validator(mode="after")
    def _inside(self) -> ZoneSettings:
        for svc in self.services:
            if svc != self.name and not svc.endswith("." + self.name):
                raise ValueError(f"service {svc!r} is outside zone {self.name!r}")
        return self


class AnswerSettings(StrictModel):
    """What a service-name answer looks like."""

    ttl: int = Field(default=5, ge=0, description="answer TTL while every edge is healthy, seconds")
    degraded_ttl: int = Field(
        default=1,
        ge=0,
        description="answer TTL while any edge is down, failing or overloaded, seconds",
    )
    per_query: int = Field(default=1, ge=1, le=64, description="edge addresses per answer")
    fallback: list[str] = Field(
        default_factory=list,
        description="addresses answered when every edge of the family is down (else least-bad)",
    )
    rtt_tolerance_ms: float = Field(
        default=2.0,
        ge=0,
        description="edges within this many ms of the fastest count as equally fast; ties "
        "are spread over client prefixes",
    )
    cache_entries: int = Field(default=65536, ge=1, description="answer cache size, entries")

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, v: list[str]) -> list[str]:
        return [_ip(a) for a in v]


class HealthSettings(StrictModel):
    """Probes of each edge's admin ``/healthz`` (health, probe RTT) and ``/status`` (load)."""

    interval: float = Field(default=0.5, gt=0, description="seconds between probes of one edge")
    timeout: float = Field(default=0.5, gt=0, description="seconds a probe may take")
    fall: int = Field(
        default=2, ge=1, description="consecutive failed probes that mark an edge down"
    )
    rise: int = Field(default=2, ge=1, description="consecutive good probes that bring it back")
    first_round: float = Field(
        default=1.0,
        gt=0,
        description="seconds after start during which answers use the degraded TTL "
        "until every edge has been probed once",
    )
    slow_start: float = Field(
        default=10.0,
        ge=0,
        description="seconds an edge that recovered from failed probes ranks after steady "
        "ones (a restarted edge has a cold cache; a flapping one is not handed out at "
        "each recovery)",
    )
    path: str = Field("/healthz", description="admin path probed for health and probe RTT")
    status_path: str = Field("/status", description="admin path read for load (in-flight, CPU)")


class LoadSettings(StrictModel):
    """Overload watermarks with hysteresis: an edge becomes overloaded when in-flight or CPU
    reaches its ``high_*`` mark and is used again only when both are at or below ``low_*``."""

    high_in_flight: int = Field(default=512, ge=1, description="requests")
    low_in_flight: int = Field(default=384, ge=0, description="requests")
    high_cpu: float = Field(default=0.9, gt=0, description="fraction of one core")
    low_cpu: float = Field(default=0.7, ge=0, description="fraction of one core")

    @model_validator(mode="after")
    def _order(self) -> LoadSettings:
        if self.low_in_flight >= self.high_in_flight:
            raise ValueError("low_in_flight must be below high_in_flight")
        if self.low_cpu >= self.high_cpu:
            raise ValueError("low_cpu must be below high_cpu")
        return self


class LatencySettings(StrictModel):
    """The RTT table: probe RTTs per edge and client-prefix RTTs reported by edges."""

    ewma_alpha: float = Field(default=0.3, gt=0, le=1, description="weight of the newest sample")
    change_threshold: float = Field(
        default=0.1,
        ge=0,
        description="relative probe-RTT change that republishes the table (and so clears the "
        "answer cache)",
    )
    sample_max_age: float = Field(default=300.0, gt=0, description="client RTT samples age out, s")
    ipv4_prefix: int = Field(default=24, ge=8, le=32, description="client prefix length, IPv4")
    ipv6_prefix: int = Field(default=56, ge=16, le=128, description="client prefix length, IPv6")
    max_prefixes: int = Field(default=100_000, ge=1, description="client prefixes remembered")
    max_samples_per_post: int = Field(default=10_000, ge=1,
                                      description="client RTT samples one edge report may carry")


class EdgeSettings(StrictModel):
    """One edge: ``address`` is what DNS answers carry; probes go to ``admin_url`` (default
    ``http://address:admin_port``)."""

    name: str = Field(pattern=_NAME)
    address: str
    port: int = Field(default=8080, ge=1, le=65535)
    admin_port: int = Field(default=9080, ge=1, le=65535)
    admin_url: str | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return _ip(v)

    def probe_base(self) -> str:
        """Base URL of the edge's admin app, without a trailing slash."""
        if self.admin_url:
            return self.admin_url.rstrip("/")
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.admin_port}"


class ControlPlaneSettings(StrictModel):
    """Optional node registry: edges from ``GET {url}/v1/nodes`` are merged with ours."""

    url: str | None = Field(None, description="control plane base URL (a read-only key as "
                            "Basic credentials in it), or several replicas as URL1,URL2; "
                            "null: only the edges listed here")
    poll_interval: float = Field(default=3.0, gt=0, description="seconds")
    timeout: float = Field(default=2.0, gt=0, description="seconds")


class RouterConfig(StrictModel):
    """The whole router configuration."""

    name: str = Field(default="router", pattern=_NAME, description="name in logs and metrics")
    host: str = Field("127.0.0.1", description="address the DNS server listens on")
    port: int = Field(default=5353, ge=0, le=65535, description="DNS port, UDP and TCP")
    admin_host: str | None = Field(default=None, description="default: host")
    admin_port: int = Field(default=19053, ge=0, le=65535, description="admin port: /healthz "
                            "/status /metrics, and the edges' RTT reports")
    edns_udp_size: int = Field(
        default=1232, ge=512, le=65535, description="our EDNS UDP payload size (RFC 6891 6.2.5)"
    )
    tcp_idle_timeout: float = Field(default=10.0, gt=0, description="seconds (RFC 7766 6.2.3)")
    tcp_max_connections: int = Field(default=256, ge=1, description="DNS-over-TCP connections "
                                     "at once; more are closed (RFC 7766 6.2.2)")
    zones: list[ZoneSettings] = Field(
        default_factory=lambda: [ZoneSettings()], min_length=1,
        description="zones answered authoritatively: list of {name, soa {mname, rname, serial, "
        "refresh, retry, expire, minimum, ttl}, nameservers [{name, addresses}], ns_ttl, "
        "services} (services: the names answered with edge addresses); other names get "
        "REFUSED (PowerDNS: not authoritative)")
    answers: AnswerSettings = AnswerSettings()
    health: HealthSettings = HealthSettings()
    load: LoadSettings = LoadSettings()
    latency: LatencySettings = LatencySettings()
    edges: list[EdgeSettings] = Field(
        default_factory=list, description="list of {name, address, port, admin_port, "
        "admin_url}: edges known without the control plane (--edge NAME=ADDR:PORT:ADMIN)")
    control_plane: ControlPlaneSettings = ControlPlaneSettings()

    @model_validator(mode="after")
    def _unique(self) -> RouterConfig:
        names = [e.name for e in self.edges]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"edge names must be unique: {sorted(dup)}")
        zones = [z.name for z in self.zones]
        if len(set(zones)) != len(zones):
            raise ValueError("zone names must be unique")
        return self

    def admin_address(self) -> tuple[str, int]:
        return self.admin_host or self.host, self.admin_port


def parse_edge_flag(text: str) -> dict[str, Any]:
    """``NAME=ADDRESS:PORT:ADMIN_PORT`` (IPv6: ``NAME=[::1]:PORT:ADMIN_PORT``) -> an
    ``edges`` entry.

    Raises:
        ConfigError: naming ``<flags>`` and the flag.
    """
    m = re.fullmatch(r"([^=]+)=(\[[^\]]+\]|[^:\[\]]+):(\d+):(\d+)", text.strip())
    if not m:
        raise ConfigError(
            f"<flags>: --edge {text!r}: expected NAME=ADDRESS:PORT:ADMIN_PORT "
            "(IPv6 addresses in brackets)"
        )
    name, address, port, admin_port = m.groups()
    return {
        "name": name,
        "address": address.strip("[]"),
        "port": int(port),
        "admin_port": int(admin_port),
    }
