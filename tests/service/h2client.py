"""A small HTTP/2 client for tests, on the h2 library over an asyncio connection (TLS with
ALPN h2, or cleartext with prior knowledge). It can also send what a well-behaved client
never would (``validate=False``): the node's defences are tested with it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events


@dataclass
class H2Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    interim: list[int] = field(default_factory=list)
    reset: int | None = None  # the error code when the server reset the stream
    done: asyncio.Event = field(default_factory=asyncio.Event)


class H2Client:
    def __init__(self, *, validate: bool = True) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding="latin-1",
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=True,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.responses: dict[int, H2Response] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = asyncio.Event()
        self.alpn: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(
        self,
        port: int,
        *,
        ca: Any = None,
        server_hostname: str = "www.example.test",
        settings: dict[int, int] | None = None,
    ) -> H2Client:
        ctx = None
        if ca is not None:
            ctx = ssl.create_default_context(cafile=str(ca))
            ctx.set_alpn_protocols(["h2", "http/1.1"])
        self._reader, self._writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname=server_hostname if ctx else None
        )
        if ctx is not None:
            sslobj = self._writer.get_extra_info("ssl_object")
            self.alpn = sslobj.selected_alpn_protocol()
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self._task = asyncio.create_task(self._read())
        return self

    def flush(self) -> None:
        assert self._writer is not None
        data = self.conn.data_to_send()
        if data:
            self._writer.write(data)

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for event in self.conn.receive_data(data):
                    self._on_event(event)
                self.flush()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed.set()
            for r in self.responses.values():
                r.done.set()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            r = self.responses[event.stream_id]
            r.headers = {}
            for n, v in event.headers:
                r.headers[n] = f"{r.headers[n]}, {v}" if n in r.headers else v
            r.status = int(r.headers.pop(":status"))
        elif isinstance(event, h2.events.InformationalResponseReceived):
            self.responses[event.stream_id].interim.append(int(dict(event.headers)[":status"]))
        elif isinstance(event, h2.events.DataReceived):
            self.responses[event.stream_id].body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.responses[event.stream_id].done.set()
        elif isinstance(event, h2.events.StreamReset):
            r = self.responses.get(event.stream_id)
            if r is not None:
                r.reset = int(event.error_code)
                r.done.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    def request(
        self,
        path: str,
        method: str = "GET",
        *,
        authority: str = "www.example.test",
        scheme: str = "https",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":authority", authority), (":scheme", scheme),
                  (":path", path), *(headers or [])]
        self.responses[sid] = H2Response()
        self.conn.send_headers(sid, fields, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        return sid

    async def get(self, path: str, timeout: float = 5.0, **kw: Any) -> H2Response:
        sid = self.request(path, **kw)
        r = self.responses[sid]
        await asyncio.wait_for(r.done.wait(), timeout)
        return r

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
