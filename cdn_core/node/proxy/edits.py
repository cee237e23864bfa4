"""A service's changes to requests toward the origin (:func:`apply_plan`) and to responses
toward clients (issue 20), whatever path answered
the request (hit, miss streamed as it arrives, stale, pass-through, error): fields set and
removed by its response rules, and its error pages in place of the origin's bodies.

:class:`EditedChannel` stands in for the request's
:class:`~cdn_core.node.exchange.channel.ResponseChannel` and edits the response head as
it goes out, so the stored response is never changed and a new version's rules apply
from the next request on. Only edges wrap (they face clients), and only for services
that have such rules: every other request pays nothing.
"""

from __future__ import annotations

from cdn_core.heads import plain_response
from cdn_core.node.exchange.channel import ForwardingChannel, ResponseChannel
from cdn_core.node.exchange.request import Request
from cdn_core.services.compiled import CompiledService, RequestPlan, ResponseEdits

# Fields describing the origin's body, wrong for an error page that replaces it.
_BODY_FIELDS = frozenset({b"content-type", b"content-length", b"content-encoding", b"etag",
                          b"last-modified", b"content-range", b"accept-ranges"})


def apply_plan(req: Request, plan: RequestPlan, path: str, query: str) -> str | None:
    """Change ``req`` toward the origin as a service's request rules say: fields removed,
    then set (a set replaces every field of that name), in ``headers`` and ``fields``
    alike. Returns the target to send upstream when a rewrite changed the path, else
    None. The cache key was made from the request as the client sent it."""
    gone = plan.remove_fields | {n.lower() for n, _ in plan.set_fields}
    if gone:
        req.headers = [(n, v) for n, v in req.headers if n.lower() not in gone]
        for name in gone:
            req.fields.pop(name, None)
        for name, value in plan.set_fields:
            req.headers.append((name, value))
            low = name.lower()
            req.fields[low] = f"{req.fields[low]}, {value}" if low in req.fields else value
    if plan.path is None:
        return None
    return f"{plan.path}?{query}" if query else plan.path


REDIRECT_REASONS = {301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect",
                    308: "Permanent Redirect"}


def send_redirect(conn: ResponseChannel, status: int, location: str) -> None:
    """A service's redirect, answered at the node and stored nowhere (RFC 9110 15.4)."""
    head, body = plain_response(status, REDIRECT_REASONS[status], f"see {location}",
                                location=location)
    conn.respond(head, b"", body, False)


def optimisation_off(req: Request, kind: str) -> bool:
    """Whether the request's service turned off the optimisation of ``kind`` (the
    transformer's kinds: ``image``, ``text``, ``encoded``)."""
    features = req.service.spec.features
    if kind == "image":
        return not features.image_optimisation
    return kind in ("text", "encoded") and not features.compression


def status_of(head: bytes) -> int:
    """The status code of a serialised head (``HTTP/1.1 404 Not Found\\r\\n...``); 0 when
    it cannot be read."""
    try:
        return int(head[9:12])
    except ValueError:
        return 0


def edit_head(head: bytes, edits: ResponseEdits, *, page_length: int | None = None) -> bytes:
    """``head`` with the fields of ``edits`` removed, then set (a set replaces every line
    of that name), and, for an error page of ``page_length`` bytes, the body fields
    replaced by an HTML type and that length."""
    drop = {n.encode() for n in edits.remove_fields}
    drop.update(n.lower().encode() for n, _ in edits.set_fields)
    if page_length is not None:
        drop |= _BODY_FIELDS
    lines = head.split(b"\r\n")
    kept = [lines[0]] + [
        line for line in lines[1:]
        if line and line.split(b":", 1)[0].strip().lower() not in drop
    ]
    kept += [f"{n}: {v}".encode("latin-1", "replace") for n, v in edits.set_fields]
    if page_length is not None:
        kept += [b"Content-Type: text/html; charset=utf-8", b"Content-Length: %d" % page_length]
    return b"\r\n".join(kept) + b"\r\n"


class EditedChannel(ForwardingChannel):
    """The request's channel with ``service``'s response rules and error pages applied
    (see the module docstring)."""

    __slots__ = ("_service", "_method", "_path", "_replaced")

    def __init__(self, conn: ResponseChannel, service: CompiledService, method: str,
                 path: str) -> None:
        super().__init__(conn)
        self._service = service
        self._method = method
        self._path = path
        self._replaced = False  # an error page answered: the origin's body is dropped

    def _edit(self, head: bytes) -> tuple[bytes, bytes | None]:
        status = status_of(head)
        page = self._service.error_page(status)
        edits = self._service.response_edits(self._method, self._path, status)
        body = page.encode() if page is not None else None
        if body is None and not edits:
            return head, None
        return edit_head(head, edits, page_length=None if body is None else len(body)), body

    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        head, page = self._edit(head)
        if page is not None:
            body = b"" if self._method == "HEAD" else page
        self._conn.respond(head, lines, body, keep_alive)

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        head, page = self._edit(head)
        if page is not None:
            self._replaced = True
            self._conn.respond(head, lines, b"" if self._method == "HEAD" else page, keep_alive)
            return
        self._conn.start(head, lines, length=length, keep_alive=keep_alive)

    # After an error page answered, the origin's body goes nowhere.
    def send(self, chunk: bytes) -> None:
        if not self._replaced:
            self._conn.send(chunk)

    async def drain(self) -> None:
        if not self._replaced:
            await self._conn.drain()

    def end(self, keep_alive: bool) -> None:
        if not self._replaced:
            self._conn.end(keep_alive)

    def abort(self) -> None:
        if not self._replaced:
            self._conn.abort()
