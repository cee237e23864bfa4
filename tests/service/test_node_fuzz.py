"""Fuzzing the request path (issue 12): whatever bytes arrive, the node answers with a
well-formed response or closes the connection, and keeps serving everyone else.
Bounded: a fixed number of examples, each with a short socket timeout."""

from __future__ import annotations

import asyncio
import re
import socket
import threading

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdn_core.node.app import Node
from cdn_core.node.settings.node import NodeConfig

STATUS_LINE = re.compile(rb"^HTTP/1\.1 [1-5]\d\d [^\r\n]*\r\n")


class Harness:
    """A node and a tiny origin on their own event loop thread (hypothesis drives
    blocking sockets from the test thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                             b"Content-Length: 2\r\n\r\nok")
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()

        self.origin = await asyncio.start_server(origin, "127.0.0.1", 0)
        port = self.origin.sockets[0].getsockname()[1]
        cfg = NodeConfig.model_validate({
            "name": "edge1", "port": 0, "admin_port": 0,
            "upstream": {"urls": [f"http://127.0.0.1:{port}"], "timeout": 2},
            "limits": {"header_timeout": 1, "body_timeout": 1, "max_body_bytes": 4096},
            "tls": {"h2c_port": 0},
        })
        self.node = Node(cfg)
        await self.node.start()

    def stop(self) -> None:
        async def stop() -> None:
            await self.node.stop()
            self.origin.close()
            await self.origin.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def exchange(self, data: bytes, port: int | None = None) -> bytes:
        with socket.create_connection(("127.0.0.1", port or self.node.port), timeout=2) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                return b""  # the node closed first: a clean refusal
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except (TimeoutError, ConnectionResetError):
                pass
            return out


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    h.thread.start()
    assert h.ready.wait(10)
    yield h
    h.stop()


TOKENS = [b"GET", b"POST", b"HEAD", b" ", b"/", b"/a?b=c", b"HTTP/1.1", b"HTTP/1.0",
          b"\r\n", b"\n", b"\r", b":", b"Host", b"Content-Length", b"Transfer-Encoding",
          b"chunked", b"0", b"5", b"-1", b"\x00", b"\xff", b"Connection: close", b"\t",
          b"Expect: 100-continue", b"Upgrade: h2c"]
requests = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join),
    st.builds(lambda m, t, h: b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (m, t, h),
              st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT"]),
              st.binary(min_size=1, max_size=40).map(lambda b: b"/" + b),
              st.binary(max_size=80)),
)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=requests)
def test_any_input_gets_a_well_formed_response_or_a_clean_close(harness, data):
    out = harness.exchange(data)
    if out:
        assert STATUS_LINE.match(out), out[:80]
    assert harness.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(
        b"HTTP/1.1 200")


# HTTP/2 (h2c with prior knowledge): frames of every type, flag and stream id, with
# payloads random or shaped like a HEADERS block, after the connection preface.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """One frame as RFC 9113 4.1 lays it out (the attacker's view, not a codec)."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


frames = st.lists(
    st.builds(
        frame,
        st.integers(0, 10),  # DATA .. CONTINUATION, and unknown types past them
        st.integers(0, 255),
        st.sampled_from([0, 1, 3, 5, 2, 0x7FFFFFFF]),
        st.one_of(st.binary(max_size=64), st.just(b"\x82\x86\x84\x41\x01x")),
    ),
    max_size=12,
).map(b"".join)


def frames_well_formed(out: bytes) -> bool:
    """``out`` is a sequence of whole frames (RFC 9113 4.1), possibly cut at the end by
    the close."""
    while len(out) >= 9:
        length = int.from_bytes(out[:3], "big")
        if out[3] > 9:
            return False  # the node never sends a frame type it does not know
        out = out[9 + length:]
    return True


def h2c_get(port: int) -> int:
    """A well-behaved h2c GET on a blocking socket: the ``:status`` answered."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":authority", "x"), (":scheme", "http"),
                              (":path", "/")], end_stream=True)
        s.sendall(conn.data_to_send())
        while True:
            data = s.recv(65536)
            assert data, "the node closed a well-behaved connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    return int(dict(event.headers)[b":status"])
            s.sendall(conn.data_to_send())


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(frames, st.binary(max_size=200)))
def test_any_h2_frames_get_frames_back_or_a_clean_close(harness, data):
    out = harness.exchange(PREFACE + data, port=harness.node.h2c_port)
    assert frames_well_formed(out), out[:80]
    assert h2c_get(harness.node.h2c_port) == 200
