"""Whether this machine lets a stack bind its sockets: one socket (:func:`bind_error`), and
a whole loopback network no other stack uses (:func:`free_net`, behind ``cdnctl up --net
auto`` and the chain tests)."""

from __future__ import annotations

import random
import socket

from control_plane.stack import StackConfig, listeners, on_net

FREE_NET_TRIES = 32


def bind_error(host: str, port: int, proto: str) -> OSError | None:
    """The error binding ``host:port`` (``proto`` ``tcp`` or ``udp``) gives, or None when
    it is free."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        if proto == "tcp":
            # as the servers bind: connections in TIME_WAIT do not make a port busy
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def free_net(stack: StackConfig, rng: random.Random | None = None) -> str:
    """A loopback network ``127.X.Y`` (X 16-254, so never the default stack's 127.0.x or
    the chaos suite's 127.0.3) on which every listener of ``stack`` moved there
    (:func:`~control_plane.stack.on_net`) can be bound now. Candidates are drawn at
    random so that two test runs starting together rarely pick the same one.

    Raises:
        OSError: none of :data:`FREE_NET_TRIES` candidates is free.
    """
    rng = rng or random.Random()
    for _ in range(FREE_NET_TRIES):
        net = f"127.{rng.randint(16, 254)}.{rng.randint(0, 255)}"
        moved = listeners(on_net(stack, net))
        if all(bind_error(host, port, proto) is None for _, host, port, proto in moved):
            return net
    raise OSError(f"no free loopback network after {FREE_NET_TRIES} tries")
