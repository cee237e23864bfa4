"""The operators' status page: ``GET /`` and its files under ``GET /ui/{name}``.

Plain HTML, CSS and JavaScript shipped in the package (``control_plane/ui/``, package
data in ``pyproject.toml``); no build step, nothing fetched from elsewhere; the charts
are SVG drawn by the page's own script.

How the page authenticates. The shell (these files) is public and holds no data. The
data comes from the JSON API (``/v1/stats/history``, ``/v1/purges``, ``/v1/origins``),
which needs an API key like any other client: the page asks for one once (a reader key
is enough: ``cdnctl keys create ops-page --role reader``, or ``reader.key`` that
``cdnctl up`` writes), keeps it in ``sessionStorage`` (this tab only, gone when it
closes; never in a cookie, so no request carries it implicitly and cross-site request
forgery has nothing to ride on) and sends it as ``Authorization: Bearer``. A 401 clears
it. We chose this over serving data without a key to loopback clients: behind a reverse
proxy or an SSH tunnel every client looks like loopback, and any local user or process
could read the network's state; the key keeps one access rule for every client, and
every request is rate limited and attributable like the CLI's.

The page renders every value with ``textContent`` (never as HTML) and is served with a
Content-Security-Policy that allows only its own script, style and API origin, and no
framing.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

# name -> content type; nothing else under /ui/ is served.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

UI_FILES = web.AppKey("ui_files", dict)


def load_files() -> dict[str, bytes]:
    """The page's files, read once from the installed package."""
    base = resources.files("control_plane").joinpath("ui")
    return {name: base.joinpath(name).read_bytes() for name in FILES}


def _response(app: web.Application, name: str) -> web.Response:
    resp = web.Response(body=app[UI_FILES][name], headers=SECURITY_HEADERS)
    resp.headers["Content-Type"] = FILES[name]
    return resp


async def index(request: web.Request) -> web.Response:
    return _response(request.app, "index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in FILES:
        raise web.HTTPNotFound()
    return _response(request.app, name)


def add_routes(app: web.Application) -> None:
    app[UI_FILES] = load_files()
    # Not API operations: registered without declared roles, so they are public and stay
    # out of the OpenAPI document.
    app.router.add_get("/", index)
    app.router.add_get("/ui/{name}", asset)
