"""The chaos suite's fault-injecting TCP proxy, in process, against a tiny HTTP upstream."""

from __future__ import annotations

import asyncio
import time

import pytest

from control_plane.chaos.faultproxy import Fault, FaultProxy, FaultProxyThread

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(30)]

BODY = b"x" * 1000
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _request(port: int, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        return head + await asyncio.wait_for(reader.readexactly(length), timeout)
    finally:
        writer.close()


@pytest.fixture
async def proxy():
    server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    p = FaultProxy("test", ("127.0.0.1", 0), ("127.0.0.1", port))
    await p.start()
    yield p
    await p.stop()
    server.close()
    await server.wait_closed()


async def test_pass_forwards_both_ways(proxy):
    assert (await _request(proxy.listen[1])).endswith(BODY)
    assert proxy.stats.bytes_down == len(ANSWER)


async def test_latency_delays_each_request(proxy):
    proxy.set_fault(Fault("latency", latency=0.3))
    t0 = time.monotonic()
    assert (await _request(proxy.listen[1])).endswith(BODY)
    assert time.monotonic() - t0 >= 0.3


async def test_http500_answers_without_the_upstream(proxy):
    proxy.set_fault(Fault("http500"))
    assert (await _request(proxy.listen[1])).startswith(b"HTTP/1.1 500 ")
    assert proxy.stats.canned_500 == 1 and proxy.stats.bytes_up == 0


async def test_reset_on_connect(proxy):
    proxy.set_fault(Fault("reset"))
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _request(proxy.listen[1])
    assert proxy.stats.resets == 1


async def test_reset_after_n_bytes_cuts_the_body(proxy):
    proxy.set_fault(Fault("reset", reset_after=100))
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _request(proxy.listen[1])


async def test_blackhole_never_answers(proxy):
    proxy.set_fault(Fault("blackhole"))
    with pytest.raises(TimeoutError):
        await _request(proxy.listen[1], timeout=0.3)


async def test_fault_applies_to_established_connections(proxy):
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen[1])
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(len(BODY))
        proxy.set_fault(Fault("http500"))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 500")
    finally:
        writer.close()


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError):
        Fault("flaky")  # type: ignore[arg-type]


def test_thread_hosts_proxies_and_switches_them():
    t = FaultProxyThread()
    t.start([FaultProxy("p", ("127.0.0.1", 0), ("127.0.0.1", 9))])
    try:
        t.set_fault("p", Fault("blackhole"))
        assert t.snapshot()[0]["fault"]["mode"] == "blackhole"
    finally:
        t.stop()
