"""What a node accepts from clients: request head and body sizes, timeouts (slow-loris),
pipelining depth and connection counts. Field ``limits`` of
:class:`cdn_core.node.settings.node.NodeConfig`; enforced by the wire side
(:mod:`cdn_core.node.wire`)."""

from __future__ import annotations

from pydantic import Field

from cdn_core.config import StrictModel


class LimitSettings(StrictModel):
    """What the node accepts from clients: head and body sizes, timeouts (slow-loris),
    pipelining, connection counts and HTTP/2 stream limits (nginx
    ``large_client_header_buffers``, ``client_body_timeout``, ``limit_conn``)."""

    max_header_bytes: int = Field(32 * 1024, gt=0, description="request head size, bytes")
    max_headers: int = Field(100, gt=0, description="request header lines")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=0, description="request body, bytes")
    max_pipelined: int = Field(32, ge=1, description="queued requests per connection")
    header_timeout: float = Field(
        10.0, gt=0, description="seconds to receive a request head (slow-loris)"
    )
    body_timeout: float = Field(30.0, gt=0, description="seconds to receive a request body")
    idle_timeout: float = Field(
        60.0, gt=0, description="seconds a keep-alive connection may wait for a request"
    )
    max_connections: int = Field(10_000, ge=1, description="client connections in total")
    max_connections_per_client: int = Field(
        256, ge=1, description="client connections from one address"
    )
    h2_max_streams: int = Field(
        100, ge=1, le=10_000, description="HTTP/2 streams a client may have open at once"
    )
    h2_max_resets_per_second: int = Field(
        200,
        ge=1,
        description="HTTP/2 stream resets (or SETTINGS, PING, empty DATA frames) a client may "
        "send per second before the connection ends (rapid reset, CVE-2023-44487)",
    )
