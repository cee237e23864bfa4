"""Certificates chosen by SNI (RFC 6066 3) for HTTP/3, as the TCP TLS listener chooses
them (:func:`~cdn_core.node.wire.tls.server_context`): the same names, wildcards and
default certificate.

aioquic serves one certificate per :class:`~aioquic.quic.configuration.QuicConfiguration`
and has no SNI callback. :meth:`QuicCertificates.install` fills the gap on each new
connection: once aioquic has created the connection's TLS context, the ClientHello is
read before aioquic processes it (the same reassembly as aioquic's: a ClientHello may
span several CRYPTO frames and Initial packets, as Chrome's post-quantum key share
does), and the certificate for its ``server_name`` is put in place. A ClientHello this
cannot parse is left to aioquic, which rejects it; a name no certificate lists gets the
default certificate, which the client then refuses or not, as over TCP.

This relies on two aioquic details, pinned by ``constraints.txt`` and checked by
``tests/service/test_node_h3.py``: ``QuicConnection._initialize`` creates ``.tls``, and
``tls.Context.handle_message`` receives the handshake bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from aioquic import tls
from aioquic._buffer import Buffer, BufferReadError
from aioquic.quic.configuration import QuicConfiguration

from cdn_core.errors import ConfigError
from cdn_core.node.settings.edge import TlsCertificate
from cdn_core.node.wire.tls import certificate_table, match_hostname

_HELLO_HEADER = 4  # handshake message type (1 byte) and length (3 bytes), RFC 8446 4


class Credentials(NamedTuple):
    """What aioquic's TLS context signs with: leaf certificate, chain, private key."""

    certificate: Any
    chain: list[Any]
    private_key: Any


def _load(cert: TlsCertificate) -> Credentials:
    config = QuicConfiguration(is_client=False)
    try:
        config.load_cert_chain(cert.cert_file, cert.key_file)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"{cert.cert_file}: cannot load certificate and key {cert.key_file}: {exc}"
        ) from exc
    return Credentials(config.certificate, list(config.certificate_chain), config.private_key)


def _whole_message(data: bytearray) -> bytes | None:
    """The first handshake message in ``data`` once all of it has arrived, else None."""
    if len(data) < _HELLO_HEADER:
        return None
    length = _HELLO_HEADER + int.from_bytes(data[1:_HELLO_HEADER], "big")
    return bytes(data[:length]) if len(data) >= length else None


def client_hello_server_name(message: bytes) -> str | None:
    """The ``server_name`` of a whole ClientHello handshake message (header included),
    lower-case; None when it names none or cannot be parsed."""
    try:
        hello = tls.pull_client_hello(Buffer(data=message))
    except (BufferReadError, ValueError, AssertionError, tls.Alert):
        return None
    return hello.server_name.lower() if hello.server_name else None


class QuicCertificates:
    """The edge's certificates for QUIC connections, by SNI name.

    Raises:
        ConfigError: no certificate, or one that cannot be loaded (names the file).
    """

    def __init__(self, certs: Sequence[TlsCertificate]) -> None:
        self.default, self._table = certificate_table(certs, _load)

    def for_name(self, server_name: str | None) -> Credentials:
        """The credentials for SNI ``server_name`` (the default when None or unknown)."""
        if not server_name:
            return self.default
        return match_hostname(server_name.lower(), self._table) or self.default

    def configure(self, config: QuicConfiguration) -> None:
        """Put the default certificate in ``config`` (what aioquic uses unless replaced)."""
        config.certificate, config.certificate_chain, config.private_key = self.default

    def install(self, quic: Any) -> None:
        """Make server connection ``quic`` (a ``QuicConnection`` not yet initialised)
        choose its certificate from the ClientHello's SNI name."""
        initialize = quic._initialize

        def initialize_then_hook(*args: Any, **kwargs: Any) -> None:
            initialize(*args, **kwargs)
            self._hook(quic.tls)

        quic._initialize = initialize_then_hook

    def _hook(self, context: Any) -> None:
        handle = context.handle_message
        pending = bytearray()

        def handle_message(input_data: bytes, output_buf: Any) -> None:
            if context.state == tls.State.SERVER_EXPECT_CLIENT_HELLO:
                pending.extend(input_data)
                message = _whole_message(pending)
                if message is not None:
                    if message[0] == tls.HandshakeType.CLIENT_HELLO:
                        (context.certificate, context.certificate_chain,
                         context.certificate_private_key) = self.for_name(
                            client_hello_server_name(message))
                    context.handle_message = handle
                    pending.clear()
            handle(input_data, output_buf)

        context.handle_message = handle_message
