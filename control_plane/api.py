"""Plumbing shared by the API routes: typed app keys, JSON errors, body parsing, and the
one middleware that turns every failure into ``{"error": "..."}`` and counts requests.

Every error answer is 4xx/5xx with a JSON body ``{"error": "what is wrong"}``; bad input
is never a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from cdn_core.clock import Clock
from cdn_core.metrics import status_class
from control_plane.cluster import Cluster
from control_plane.config import ControlPlaneConfig
from control_plane.db import DatabaseUnavailable
from control_plane.metrics import ControlPlaneMetrics
from control_plane.purge import PurgeFanout
from control_plane.store import Store

log = logging.getLogger("cdn.control_plane")

B = TypeVar("B", bound=BaseModel)

CONFIG = web.AppKey("config", ControlPlaneConfig)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", ControlPlaneMetrics)
STORE = web.AppKey("store", Store)


class Live:
    """What exists only while the app runs: created and closed by the app's cleanup_ctx
    (the app's own keys are frozen by then, so they hold this mutable box)."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.fanout: PurgeFanout | None = None
        self.cluster: Cluster | None = None


LIVE = web.AppKey("live", Live)


def session_of(app: web.Application) -> aiohttp.ClientSession:
    """The running app's HTTP client session."""
    session = app[LIVE].session
    if session is None:
        raise RuntimeError("control plane app is not running")
    return session


def is_leader(app: web.Application) -> bool:
    """True when this replica runs the work that must happen once (see
    :mod:`control_plane.cluster`); also before the cluster is set up."""
    cluster = app[LIVE].cluster
    return cluster is None or cluster.is_leader


def fanout_of(app: web.Application) -> PurgeFanout:
    """The running app's purge fan-out."""
    fanout = app[LIVE].fanout
    if fanout is None:
        raise RuntimeError("control plane app is not running")
    return fanout


class ApiError(Exception):
    """An answer other than success: ``status`` (4xx/5xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}
        """More of the error body beside ``error`` (``{"problems": [...]}``)."""


def json_error(status: int, message: str, extra: dict[str, Any] | None = None,
               **headers: str) -> web.Response:
    return web.json_response({"error": message, **(extra or {})}, status=status,
                             headers=headers or None)


def validation_message(exc: ValidationError) -> str:
    """The first pydantic error as ``field: what is wrong``. Unknown fields are reported
    first, by name, since a misspelt field also makes the intended one look missing."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = ".".join(str(x) for x in err["loc"]) or "body"
    if err["type"] == "extra_forbidden":
        return f"unknown field {field!r}"
    if err["type"] == "missing":
        return f"{field}: field required"
    return f"{field}: {err['msg']}"


async def read_body(request: web.Request, model: type[B]) -> B:
    """Parse the request's JSON object body into ``model``.

    Raises:
        ApiError: 400 naming the problem (not JSON, not an object, unknown or bad field).
    """
    raw = await request.read()
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(400, "body is nested too deeply") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, validation_message(exc)) from exc


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """Integer query parameter ``name`` within ``[lo, hi]``; ApiError 400 otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None  # the value is not echoed
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be between {lo} and {hi}, got {value}")
    return value


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate failures into JSON errors (the one catch-all that answers 500) and count
    every request by route template and status class."""
    resp: web.StreamResponse
    try:
        resp = await handler(request)
    except ApiError as exc:
        resp = json_error(exc.status, exc.message, exc.extra, **exc.headers)
    except DatabaseUnavailable as exc:
        # Nothing was written (the transaction did not commit); the client may retry.
        log.warning("%s %s: %s", request.method, request.path, exc)
        resp = json_error(503, str(exc), {"retryable": True}, **{"Retry-After": "1"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        message = exc.reason
        if exc.status == 413:
            message = f"request body too large: {exc.text or exc.reason}"
        elif exc.status == 404:
            message = f"no such resource: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        resp = json_error(exc.status, message, None, **headers)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        # The client went away mid-request: nothing to answer, nothing to log loudly.
        log.debug("client left during %s %s", request.method, request.path)
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        resp = json_error(500, "internal error (logged by the control plane)")
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].api_requests.labels(route, status_class(resp.status)).inc()
    return resp


def body_of(value: Any, status: int = 200) -> web.Response:
    """A JSON response (``value`` serialised as is)."""
    return web.json_response(value, status=status)
