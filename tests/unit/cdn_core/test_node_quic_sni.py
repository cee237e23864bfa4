"""SNI certificate choice for HTTP/3 (RFC 6066 3; cdn_core.node.wire.quic_sni): the
ClientHello is read whole even when it arrives in pieces, the name picks the certificate
as on the TCP listener (exact, then one-label wildcard, else the default), and a
ClientHello that cannot be parsed is left to aioquic with the default certificate."""

from __future__ import annotations

import pytest
from aioquic import tls
from aioquic._buffer import Buffer

from cdn_core.errors import ConfigError
from cdn_core.node.settings.edge import TlsCertificate
from cdn_core.node.wire.quic_sni import QuicCertificates, client_hello_server_name
from cdn_core.pki import ensure_demo_pki


def client_hello(server_name: str | None) -> bytes:
    ctx = tls.Context(is_client=True, server_name=server_name, alpn_protocols=["h3"])
    ctx.handshake_extensions = []
    out = {epoch: Buffer(capacity=4096) for epoch in tls.Epoch}
    ctx.handle_message(b"", out)
    return out[tls.Epoch.INITIAL].data


class FakeServerContext:
    """What the hook touches of aioquic's server ``tls.Context``."""

    def __init__(self) -> None:
        self.state = tls.State.SERVER_EXPECT_CLIENT_HELLO
        self.certificate = self.certificate_chain = self.certificate_private_key = None
        self.seen: list[bytes] = []
        self.certificate_at_hello = None

    def handle_message(self, data: bytes, out: object) -> None:
        self.seen.append(data)
        if sum(map(len, self.seen)) >= 4 and self.state == tls.State.SERVER_EXPECT_CLIENT_HELLO:
            self.certificate_at_hello = self.certificate


@pytest.fixture
def certs(tmp_path):
    www = ensure_demo_pki(tmp_path / "www", ["www.example.test"])
    static = ensure_demo_pki(tmp_path / "static", ["static.example.test", "*.img.example.test"])
    return QuicCertificates([
        TlsCertificate(cert_file=str(www["cert"]), key_file=str(www["key"])),
        TlsCertificate(cert_file=str(static["cert"]), key_file=str(static["key"])),
    ])


def names(creds) -> list[str]:
    from cryptography import x509
    san = creds.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return san.value.get_values_for_type(x509.DNSName)


def test_server_name_read_from_a_whole_client_hello_only():
    hello = client_hello("Static.Example.Test")
    assert client_hello_server_name(hello) == "static.example.test"
    assert client_hello_server_name(client_hello(None)) is None
    assert client_hello_server_name(hello[:60]) is None
    assert client_hello_server_name(b"\x02\x00\x00\x01\x00") is None  # not a ClientHello


def test_names_choose_like_the_tcp_listener(certs):
    assert names(certs.for_name("static.example.test")) == ["static.example.test",
                                                           "*.img.example.test"]
    assert names(certs.for_name("a.img.example.test"))[0] == "static.example.test"
    assert names(certs.for_name("b.a.img.example.test")) == ["www.example.test"]  # one label
    assert certs.for_name("unknown.test") is certs.default
    assert certs.for_name(None) is certs.default


@pytest.mark.parametrize("pieces", [1, 3, 40])
def test_hook_sets_the_certificate_before_aioquic_reads_a_fragmented_hello(certs, pieces):
    hello = client_hello("static.example.test")
    ctx = FakeServerContext()
    certs._hook(ctx)
    step = -(-len(hello) // pieces)
    for i in range(0, len(hello), step):
        ctx.handle_message(hello[i:i + step], {})
    assert b"".join(ctx.seen) == hello  # every byte still reaches aioquic, in order
    assert ctx.certificate is certs.for_name("static.example.test").certificate
    assert ctx.certificate is not certs.default.certificate
    assert ctx.handle_message.__func__ is FakeServerContext.handle_message  # unhooked after


def test_unparsable_hello_keeps_the_default_and_reaches_aioquic(certs):
    ctx = FakeServerContext()
    certs._hook(ctx)
    junk = b"\x01\x00\x00\x05abcde"
    ctx.handle_message(junk, {})
    assert ctx.seen == [junk]
    assert ctx.certificate is certs.default.certificate


def test_a_certificate_that_cannot_load_names_the_file(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="bad.pem"):
        QuicCertificates([TlsCertificate(cert_file=str(bad), key_file=str(bad),
                                         hostnames=["x.test"])])
