"""TLS termination for edges: one server context per certificate, chosen by SNI
(RFC 6066 3), TLS 1.2 or newer only, HTTP/2 and HTTP/1.1 offered through ALPN (RFC 7301):
:class:`AlpnSwitch` hands each connection to the protocol the client chose."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cryptography import x509

from cdn_core.errors import ConfigError
from cdn_core.node.settings.edge import TlsCertificate

T = TypeVar("T")


def certificate_hostnames(cert_file: str) -> list[str]:
    """DNS names in the certificate's subjectAltName (lower-case).

    Raises:
        ConfigError: the file cannot be read or is not a PEM certificate.
    """
    try:
        with open(cert_file, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{cert_file}: cannot read certificate: {exc}") from exc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]


def _context(cert: TlsCertificate, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(alpn)
    try:
        ctx.load_cert_chain(cert.cert_file, cert.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{cert.cert_file}: cannot load certificate and key {cert.key_file}: {exc}"
        ) from exc
    return ctx


def match_hostname(name: str, table: dict[str, T]) -> T | None:
    """The entry of ``table`` (lower-case names) for SNI ``name``: an exact name, else a
    wildcard ``*.`` entry for the name's parent (RFC 6125 6.4.3: one label only)."""
    found = table.get(name)
    if found is None and "." in name:
        found = table.get("*." + name.split(".", 1)[1])
    return found


def certificate_table(
    certs: Sequence[TlsCertificate], load: Callable[[TlsCertificate], T]
) -> tuple[T, dict[str, T]]:
    """``load(cert)`` for each certificate, and the table of names they answer (their
    ``hostnames``, else their subjectAltName DNS names; the first certificate listing a
    name wins). Returns ``(default, table)``: the default is the first certificate's,
    served when the client sends no SNI or an unknown name.

    Raises:
        ConfigError: no certificate, or one that cannot be read (from ``load``).
    """
    if not certs:
        raise ConfigError("tls.certificates: at least one certificate is needed for tls.port")
    table: dict[str, T] = {}
    loaded = []
    for cert in certs:
        item = load(cert)
        loaded.append(item)
        for name in cert.hostnames or certificate_hostnames(cert.cert_file):
            table.setdefault(name.lower(), item)
    return loaded[0], table


def server_context(certs: Sequence[TlsCertificate], *, http2: bool = True) -> ssl.SSLContext:
    """A server context serving ``certs``; the first is the default when the client sends
    no SNI or an unknown name. ALPN offers ``h2`` (when ``http2``) then ``http/1.1``.

    Raises:
        ConfigError: no certificate, or one that cannot be loaded (names the file).
    """
    alpn = ["h2", "http/1.1"] if http2 else ["http/1.1"]
    default, table = certificate_table(certs, lambda cert: _context(cert, alpn))

    def pick(sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if server_name:
            chosen = match_hostname(server_name.lower(), table)
            if chosen is not None and chosen is not default:
                sslobj.context = chosen

    default.sni_callback = pick
    return default


class AlpnSwitch(asyncio.Protocol):
    """The protocol a TLS listener starts each connection with: once the handshake is
    done, it hands the transport to ``make_h2()`` when the client chose ``h2`` by ALPN,
    else to ``make_http1()`` (no ALPN means HTTP/1.1, RFC 7301 3.2)."""

    def __init__(
        self, make_http1: Callable[[], asyncio.Protocol], make_h2: Callable[[], asyncio.Protocol]
    ) -> None:
        self._make_http1 = make_http1
        self._make_h2 = make_h2

    def connection_made(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        chosen = sslobj.selected_alpn_protocol() if sslobj is not None else None
        inner = self._make_h2() if chosen == "h2" else self._make_http1()
        transport.set_protocol(inner)
        inner.connection_made(transport)
