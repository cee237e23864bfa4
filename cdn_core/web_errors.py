"""What every aiohttp listener (control plane, admin ports, origin, router admin) answers
to a request it cannot parse: a JSON ``{"error": "..."}`` with the status, never the
bytes the client sent.

aiohttp's own answer quotes the offending line (``Got more than 8190 bytes when reading:
b'...'``, ``Invalid header token: b'...'``), which reflects attacker-chosen bytes into a
response, and it logs a traceback per bad request. Here the status follows the fault (431
for an oversized header field, 414 for an oversized request target, RFC 6585 5 and RFC
9110 15.5.15) and the body names only the class of fault. Logging is aiohttp's (which
:class:`cdn_core.service.ClientNoiseLog` shortens to one line a minute).
Handler failures (500) keep aiohttp's body, which never quotes input.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

_FAULTS = {
    400: "malformed request",
    414: "request target too long",
    431: "request header field too large",
    501: "unsupported method or transfer coding",
}


def parse_error_status(exc: BaseException | None, status: int) -> int:
    """The status for a parse failure ``exc`` that aiohttp reported as ``status``: a line
    over the limit is 414 when it was the request target, 431 when a header field (read
    from where the parser raised), else ``status``."""
    if not isinstance(exc, LineTooLong):
        return status
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_name if tb is not None else ""
    if "url" in where or "status" in where or "request_line" in where:
        return 414
    if "header" in where:
        return 431
    return 400


def error_body(status: int) -> str:
    """The JSON body for a parse failure answered with ``status``."""
    return json.dumps({"error": _FAULTS.get(status, "bad request"), "status": status})


class QuietRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering parse failures as the module says."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 and not isinstance(exc, (HttpProcessingError, BadHttpMethod)):
            return super().handle_error(request, status, exc, message)
        status = parse_error_status(exc, status)
        if isinstance(exc, BadHttpMethod):  # mostly TLS or junk sent to a plain port
            self.logger.debug("Error handling request from %s", request.remote, exc_info=exc)
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        resp = web.Response(status=status, text=error_body(status), content_type="application/json")
        resp.force_close()
        return resp


class QuietServer(web.Server):
    """A :class:`web.Server` whose connections use :class:`QuietRequestHandler`."""

    def __call__(self) -> RequestHandler:
        kwargs: dict[str, Any] = self._kwargs
        return QuietRequestHandler(self, loop=self._loop, **kwargs)


class QuietAppRunner(web.AppRunner):
    """An :class:`web.AppRunner` serving through :class:`QuietServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = QuietServer  # the same object; only how connections start
        return server
