"""Settings of the policies only an edge applies: TLS termination and signed URLs
(issue 12). Kept apart from :mod:`cdn_core.node.settings.node` so each stays small."""

from __future__ import annotations

from pydantic import Field

from cdn_core.config import StrictModel


class TlsCertificate(StrictModel):
    cert_file: str = Field(description="PEM certificate chain")
    key_file: str = Field(description="PEM private key")
    hostnames: list[str] = Field(
        default_factory=list,
        description="names served with this certificate (SNI); default: the certificate's "
        "subjectAltName DNS names",
    )


class TlsSettings(StrictModel):
    """The edge's HTTPS listener: certificates chosen by SNI, HTTP/2 by ALPN, HTTP/3 over
    QUIC on the same port number (UDP), and an optional cleartext h2c port."""

    port: int | None = Field(None, ge=0, le=65535, description="HTTPS listener; null: off")
    certificates: list[TlsCertificate] = Field(
        default_factory=list, description="list of {cert_file, key_file, hostnames}: PEM "
        "chain and key, served for the hostnames (SNI; default: the certificate's DNS "
        "names); the first is the default certificate")
    http2: bool = Field(True, description="offer HTTP/2 (ALPN h2) beside HTTP/1.1 on port")
    http3: bool = Field(
        False, description="HTTP/3 over QUIC on UDP port, advertised with Alt-Svc on TLS"
    )
    h2c_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="cleartext HTTP/2 with prior knowledge (RFC 9113 3.3); null: off",
    )
    h3_max_datagram_size: int = Field(
        1350, ge=1200, le=65527, description="largest UDP payload HTTP/3 sends, bytes "
        "(RFC 9000 14: at least 1200; 1350 is the payload Google's QUIC deployment chose, "
        "SIGCOMM 2017; 1200 for tunnelled paths)")


class SignedUrlKey(StrictModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    secret: str = Field(min_length=16, description="HMAC-SHA256 secret")


class SignedUrlSettings(StrictModel):
    """Paths under ``path_prefixes`` need ``?expires=<unix seconds>&kid=<key id>&sig=<hex>``
    where sig is HMAC-SHA256 over the path, the other query parameters, expires and (with
    ``bind_client``) the client address. Several keys may be active at once (rotation)."""

    path_prefixes: list[str] = Field(
        default_factory=list, description="paths that need a valid signature (403 without)")
    keys: list[SignedUrlKey] = Field(
        default_factory=list, description="list of {id, secret}: HMAC-SHA256 keys by key id "
        "(kid=); several at once for rotation; the control plane's signing keys add to them")
    bind_client: bool = Field(
        False, description="the signature also covers the client address (nginx secure_link "
        "with $remote_addr)")
