"""A minimal HTTP/1.1 client that counts what crosses the wire.

One request per connection (``Connection: close``), the response read to EOF, so the
byte counts are exact: ``wire_bytes`` is everything the server sent (status line,
header fields, chunk framing, body), ``body`` the payload after the transfer coding
(chunked) is removed but with its content coding (gzip, br) still applied, as a
browser's network panel would count it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(slots=True)
class Response:
    status: int
    fields: dict[str, str]  # lower-cased names; repeated fields joined with ", "
    head_bytes: int
    body: bytes
    wire_bytes: int

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name.lower(), default)


def fetch(
    port: int,
    target: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    timeout: float = 30.0,
) -> Response:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    return parse(data, head_only=method == "HEAD")


def parse(data: bytes, *, head_only: bool = False) -> Response:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError(f"no complete response head in {len(data)} bytes")
    head, rest = data[:end].decode("latin-1"), data[end + 4 :]
    status_line, *field_lines = head.split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    fields: dict[str, str] = {}
    for line in field_lines:
        name, _, value = line.partition(":")
        k = name.strip().lower()
        v = value.strip()
        fields[k] = f"{fields[k]}, {v}" if k in fields else v
    if head_only or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        body = _dechunk(rest)
    elif "content-length" in fields:
        n = int(fields["content-length"])
        if len(rest) < n:
            raise ValueError(f"body truncated: {len(rest)} of {n} bytes")
        body = rest[:n]
    else:
        body = rest
    return Response(status, fields, end + 4, body, len(data))


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    i = 0
    while True:
        j = data.index(b"\r\n", i)
        size = int(data[i:j].split(b";", 1)[0], 16)
        i = j + 2
        if size == 0:
            return b"".join(out)
        out.append(data[i : i + size])
        if len(data) < i + size:
            raise ValueError("chunk truncated")
        i += size + 2
