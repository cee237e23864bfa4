"""``python -m bench.h3get URL [--ca FILE] [--connect ADDR:PORT] [-H 'Name: value']``:
one HTTP/3 request with aioquic (what ``curl --http3`` does, for machines whose curl has
no HTTP/3), printing the status, the response fields and the body size; exit 1 unless
the status is 2xx or 3xx. :func:`h3_get` is what the tests call."""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent


@dataclass
class H3Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    interim: list[int] = field(default_factory=list)


class _Client(QuicConnectionProtocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.h3 = H3Connection(self._quic)
        self.responses: dict[int, H3Response] = {}
        self.waiters: dict[int, asyncio.Future[H3Response]] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for ev in self.h3.handle_event(event):
            r = self.responses.get(getattr(ev, "stream_id", -1))
            if r is None:
                continue
            if isinstance(ev, HeadersReceived):
                fields: dict[str, str] = {}
                for k, v in ev.headers:  # repeated fields combined (RFC 9110 5.3)
                    n = k.decode()
                    fields[n] = f"{fields[n]}, {v.decode()}" if n in fields else v.decode()
                status = int(fields.pop(":status"))
                if 100 <= status < 200:
                    r.interim.append(status)
                else:
                    r.status, r.headers = status, fields
            elif isinstance(ev, DataReceived):
                r.body += ev.data
            if getattr(ev, "stream_ended", False):
                waiter = self.waiters.pop(ev.stream_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(r)

    async def request(
        self, method: str, authority: str, path: str, headers: list[tuple[str, str]]
    ) -> H3Response:
        sid = self._quic.get_next_available_stream_id()
        self.responses[sid] = H3Response()
        fut = self.waiters[sid] = asyncio.get_running_loop().create_future()
        fields = [(b":method", method.encode()), (b":scheme", b"https"),
                  (b":authority", authority.encode()), (b":path", path.encode())]
        fields += [(n.lower().encode(), v.encode()) for n, v in headers]
        self.h3.send_headers(sid, fields, end_stream=True)
        self.transmit()
        return await fut


async def h3_get(
    url: str,
    *,
    ca: str | None = None,
    connect_to: tuple[str, int] | None = None,
    headers: list[tuple[str, str]] | None = None,
    count: int = 1,
    timeout: float = 10.0,
) -> list[H3Response]:
    """GET ``url`` ``count`` times over one HTTP/3 connection (to ``connect_to`` instead
    of the URL's host when given), verifying the server against ``ca``.

    Raises:
        TimeoutError: no complete answer within ``timeout`` seconds.
        ConnectionError: the QUIC handshake failed.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=host)
    if ca:
        config.load_verify_locations(ca)
    else:
        config.verify_mode = ssl.CERT_NONE
    addr, aport = connect_to or (host, port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout):
        async with connect(addr, aport, configuration=config, create_protocol=_Client) as client:
            assert isinstance(client, _Client)
            authority = host if port == 443 else f"{host}:{port}"
            return [
                await client.request("GET", authority, path, headers or [])
                for _ in range(count)
            ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.h3get", description=__doc__)
    p.add_argument("url")
    p.add_argument("--ca", help="CA file to verify the server with (run/tls/ca.pem)")
    p.add_argument("--connect", help="ADDR:PORT to send to instead of the URL's host")
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    args = p.parse_args(argv)
    to = None
    if args.connect:
        a, _, port = args.connect.rpartition(":")
        to = (a, int(port))
    headers = [tuple(h.split(":", 1)) for h in args.header]
    try:
        (r,) = asyncio.run(h3_get(args.url, ca=args.ca, connect_to=to,
                                  headers=[(n.strip(), v.strip()) for n, v in headers]))
    except (TimeoutError, ConnectionError, OSError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"HTTP/3 {r.status}")
    for n, v in r.headers.items():
        print(f"{n}: {v}")
    print(f"({len(r.body)} body bytes)")
    return 0 if 200 <= r.status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
