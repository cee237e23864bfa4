"""UDP for the router in batches: recvmmsg(2) and sendmmsg(2) through ctypes (Linux).

One readiness callback from the event loop reads up to ``batch`` datagrams with a single
system call, answers each through ``handler(data, addr)`` and sends every reply with a
single sendmmsg. Per query this saves the event loop's per-datagram work (a wake-up, a
callback, turning the sender's address into a ``(str, int)`` tuple and back), which costs
more than answering a cached query does. ``addr`` is the sender's socket address as the
kernel wrote it (``struct sockaddr_in`` or ``sockaddr_in6``, 16 or 28 octets); a reply
goes back to that same address.

:func:`available` says whether this libc has both calls; :class:`router.protocol.DnsServer`
falls back to an asyncio datagram endpoint where it does not.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import socket
import sys
from collections.abc import Callable

log = logging.getLogger("cdn.router.dns")

RawHandler = Callable[[bytes, bytes], bytes | None]

_NAME_BYTES = 32  # room for a sockaddr_in6 (28 octets), kept 8-aligned
_MSG_DONTWAIT = 0x40
_MSG_TRUNC = 0x20
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


# Word offsets into one struct mmsghdr seen as 32-bit words (read per datagram through a
# memoryview: much cheaper than a ctypes field access).
_WORDS = ctypes.sizeof(_Mmsghdr) // 4
_NAMELEN = _Msghdr.msg_namelen.offset // 4
_FLAGS = _Msghdr.msg_flags.offset // 4
_LEN = _Mmsghdr.msg_len.offset // 4
# ... and as 64-bit words, for the pointer to the reply's address.
_QWORDS = ctypes.sizeof(_Mmsghdr) // 8
_NAME = _Msghdr.msg_name.offset // 8


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    recv.restype = send.restype = ctypes.c_int
    return libc


_LIBC = _libc()


def available() -> bool:
    """Whether batched UDP works here (Linux, 64-bit, a libc with recvmmsg/sendmmsg)."""
    return _LIBC is not None


class BatchedUdp:
    """Serves one bound, non-blocking UDP socket from the running event loop.

    ``batch`` datagrams per system call; ``max_query`` octets kept of a query (a longer
    one arrives cut to ``max_query + 1`` octets, so the handler still sees that it is too
    long); ``max_reply`` octets at most per reply (longer replies are dropped: the
    resolver never makes a UDP reply above its EDNS size). At most ``rounds`` batches are
    served per wake-up so that TCP and the admin API keep their turn under a flood.
    """

    def __init__(
        self,
        sock: socket.socket,
        handler: RawHandler,
        *,
        max_query: int,
        max_reply: int,
        batch: int = 64,
        rounds: int = 8,
    ) -> None:
        if _LIBC is None:
            raise RuntimeError("recvmmsg/sendmmsg are not available here")
        self.sock = sock
        self._fd = sock.fileno()
        self._handler = handler
        self._batch = batch
        self._rounds = rounds
        self._rslot = max_query + 1
        self._sslot = max_reply
        self._recv = _LIBC.recvmmsg
        self._send = _LIBC.sendmmsg
        self._loop: asyncio.AbstractEventLoop | None = None

        self._rbuf = (ctypes.c_char * (batch * self._rslot))()
        self._sbuf = (ctypes.c_char * (batch * self._sslot))()
        self._names = (ctypes.c_char * (batch * _NAME_BYTES))()
        self._riov = (_Iovec * batch)()
        self._siov = (_Iovec * batch)()
        self._rmsgs = (_Mmsghdr * batch)()
        self._smsgs = (_Mmsghdr * batch)()
        rbase = ctypes.addressof(self._rbuf)
        sbase = ctypes.addressof(self._sbuf)
        self._names_at = ctypes.addressof(self._names)
        for i in range(batch):
            self._riov[i].iov_base = rbase + i * self._rslot
            self._riov[i].iov_len = self._rslot
            self._siov[i].iov_base = sbase + i * self._sslot
            hdr = self._rmsgs[i].msg_hdr
            hdr.msg_name = self._names_at + i * _NAME_BYTES
            hdr.msg_namelen = _NAME_BYTES
            hdr.msg_iov = ctypes.pointer(self._riov[i])
            hdr.msg_iovlen = 1
            shdr = self._smsgs[i].msg_hdr
            shdr.msg_iov = ctypes.pointer(self._siov[i])
            shdr.msg_iovlen = 1
        self._rwords = memoryview(self._rmsgs).cast("B").cast("I")
        self._swords = memoryview(self._smsgs).cast("B").cast("I")
        self._sqwords = memoryview(self._smsgs).cast("B").cast("Q")
        self._siov_len = memoryview(self._siov).cast("B").cast("Q")
        self._rview = memoryview(self._rbuf).cast("B")
        self._sview = memoryview(self._sbuf).cast("B")
        self._nview = memoryview(self._names).cast("B")

    def start(self) -> None:
        """Start serving from the running loop."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def close(self) -> None:
        """Stop serving and close the socket."""
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None
        self.sock.close()

    def _readable(self) -> None:
        for _ in range(self._rounds):
            n = self._recv(self._fd, self._rmsgs, self._batch, _MSG_DONTWAIT, None)
            if n <= 0:
                if n < 0 and ctypes.get_errno() not in _RETRY:
                    # ICMP errors about earlier replies land here (ECONNREFUSED): they
                    # concern one past reply, not the socket.
                    log.debug("recvmmsg: %s", errno.errorcode.get(ctypes.get_errno(), "?"))
                return
            self._serve(n)
            if n < self._batch:
                return

    def _serve(self, n: int) -> None:
        words, rview, nview = self._rwords, self._rview, self._nview
        swords, sq, siov_len, sview = self._swords, self._sqwords, self._siov_len, self._sview
        rslot, sslot, handler = self._rslot, self._sslot, self._handler
        names_at = self._names_at
        out = 0
        for i in range(n):
            w = i * _WORDS
            size = words[w + _LEN]
            if words[w + _FLAGS] & _MSG_TRUNC:
                size = rslot  # cut short: the handler answers FORMERR for its length
            start = i * rslot
            namelen = words[w + _NAMELEN]
            words[w + _NAMELEN] = _NAME_BYTES  # value-result: reset for the next call
            name = i * _NAME_BYTES
            try:
                wire = handler(
                    rview[start : start + size].tobytes(),
                    nview[name : name + namelen].tobytes(),
                )
            except Exception:  # the handler answers SERVFAIL itself; this is a bug
                log.exception("UDP query handler failed")
                continue
            if wire is None or len(wire) > sslot:
                continue
            at = out * sslot
            sview[at : at + len(wire)] = wire
            siov_len[out * 2 + 1] = len(wire)
            sq[out * _QWORDS + _NAME] = names_at + name
            swords[out * _WORDS + _NAMELEN] = namelen
            out += 1
        sent = 0
        while sent < out:
            k = self._send(
                self._fd,
                ctypes.byref(self._smsgs, sent * ctypes.sizeof(_Mmsghdr)),
                out - sent,
                0,
            )
            if k > 0:
                sent += k
                continue
            err = ctypes.get_errno() if k < 0 else errno.EAGAIN
            if err == errno.EINTR:
                continue
            if err in _RETRY:
                return  # a full socket buffer drops the rest, as the kernel would
            sent += 1  # this one reply cannot go (unreachable address...): the others can
