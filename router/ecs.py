"""Client prefixes and the EDNS Client Subnet option (RFC 7871). Pure functions.

A client prefix is keyed as ``PrefixKey = (version, network)``: the IP version (4 or 6)
and the network address as an integer, masked to the configured prefix length (/24 for
IPv4 and /56 for IPv6 by default). Integers keep the hot path free of ``ip_network``
objects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ECS_OPTION_CODE = 8  # RFC 7871 6 (IANA EDNS0 option code)

PrefixKey = tuple[int, int]

_FAMILY_VERSION = {1: 4, 2: 6}  # RFC 7871 6: FAMILY from the IANA address family numbers
_VERSION_BITS = {4: 32, 6: 128}


class EcsError(ValueError):
    """The ECS option is malformed; the query gets FORMERR (RFC 7871 6, 7.1.1)."""


@dataclass(frozen=True, slots=True)
class ClientSubnet:
    """A parsed ECS option: ``family`` 1 (IPv4) or 2 (IPv6), ``source`` prefix length in
    bits, ``address`` the prefix as an integer (host bits zero), ``raw_address`` the
    ADDRESS octets exactly as received (echoed back, RFC 7871 7.2.1)."""

    family: int
    source: int
    address: int
    raw_address: bytes

    @property
    def version(self) -> int:
        return _FAMILY_VERSION[self.family]

    def response_option(self, scope: int) -> bytes:
        """The option data of our answer: FAMILY, SOURCE PREFIX-LENGTH and ADDRESS copied,
        SCOPE PREFIX-LENGTH set to ``scope`` bits (RFC 7871 7.2.1)."""
        return (
            self.family.to_bytes(2, "big")
            + bytes((self.source, min(scope, _VERSION_BITS[self.version])))
            + self.raw_address
        )


def parse_ecs(data: bytes) -> ClientSubnet:
    """Parse ECS option data (RFC 7871 6).

    Raises:
        EcsError: unknown FAMILY, SOURCE PREFIX-LENGTH longer than the family allows, a
            non-zero SCOPE in a query, ADDRESS of the wrong length, or non-zero bits
            past SOURCE PREFIX-LENGTH.
    """
    if len(data) < 4:
        raise EcsError("ECS option shorter than 4 octets")
    family = int.from_bytes(data[:2], "big")
    source, scope = data[2], data[3]
    raw = data[4:]
    version = _FAMILY_VERSION.get(family)
    if version is None:
        raise EcsError(f"ECS family {family} unknown")
    bits = _VERSION_BITS[version]
    if source > bits:
        raise EcsError(f"ECS source prefix /{source} too long")
    if scope != 0:
        raise EcsError("ECS scope must be 0 in queries")
    if len(raw) != (source + 7) // 8:
        raise EcsError("ECS address length does not match the source prefix")
    value = int.from_bytes(raw.ljust(bits // 8, b"\0"), "big")
    if value & ((1 << (bits - source)) - 1):
        raise EcsError("ECS address has bits set past the source prefix")
    return ClientSubnet(family, source, value, raw)


def encode_ecs(network: str, scope: int = 0) -> bytes:
    """ECS option data for ``"203.0.113.0/24"`` (used by tests and tools)."""
    net = ipaddress.ip_network(network, strict=False)
    family = 1 if net.version == 4 else 2
    raw = net.network_address.packed[: (net.prefixlen + 7) // 8]
    return family.to_bytes(2, "big") + bytes((net.prefixlen, scope)) + raw


class PrefixPolicy:
    """Maps addresses to client-prefix keys: ``v4``/``v6`` are prefix lengths in bits."""

    __slots__ = ("v4", "v6", "_mask4", "_mask6")

    def __init__(self, v4: int = 24, v6: int = 56) -> None:
        self.v4 = v4
        self.v6 = v6
        self._mask4 = ((1 << v4) - 1) << (32 - v4)
        self._mask6 = ((1 << v6) - 1) << (128 - v6)

    def length(self, version: int) -> int:
        """Prefix length in bits used for ``version`` (the ECS scope we answer with)."""
        return self.v4 if version == 4 else self.v6

    def key_for(self, version: int, address: int) -> PrefixKey:
        """The key of the prefix holding the integer ``address``."""
        if version == 4:
            return 4, address & self._mask4
        return 6, address & self._mask6

    def key_for_text(self, address: str) -> PrefixKey:
        """The key for a source address string (IPv4-mapped IPv6 counts as IPv4).

        Raises:
            ValueError: not an IP address.
        """
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self.key_for(ip.version, int(ip))

    def key_for_subnet(self, subnet: ClientSubnet) -> PrefixKey:
        return self.key_for(subnet.version, subnet.address)

    def parse_prefix(self, text: str) -> PrefixKey:
        """``"203.0.113.0/24"`` (or a more specific prefix or a bare address) -> its key.

        Raises:
            ValueError: not a prefix, or shorter than the configured length (it would
                cover several of our prefixes, so its RTT says nothing about one of them).
        """
        net = ipaddress.ip_network(text, strict=False)
        if net.prefixlen < self.length(net.version):
            raise ValueError(f"{text}: shorter than /{self.length(net.version)}")
        return self.key_for(net.version, int(net.network_address))

    def format(self, key: PrefixKey) -> str:
        """``(4, 0xCB007100)`` -> ``"203.0.113.0/24"``."""
        version, value = key
        if version == 4:
            return f"{ipaddress.IPv4Address(value)}/{self.v4}"
        return f"{ipaddress.IPv6Address(value)}/{self.v6}"
