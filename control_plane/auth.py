"""Authentication and authorisation of the control plane API.

Credentials travel as ``Authorization: Bearer <key>`` (or HTTP Basic with the key as the
password, so that a URL like ``http://reader:KEY@host:9000`` works for pollers; or
``X-API-Key: <key>``). Three kinds are accepted:

- **API keys** made with ``POST /v1/keys``: ``cdn_<id>.<secret>``. Only a random 16-byte
  salt and ``sha256(salt || secret)`` are stored; the secret is shown once, at creation.
  The secret is 32 random bytes, so a fast hash is enough (no password stretching needed).
- **Bootstrap keys** read at startup from ``auth.admin_key_file`` (and the environment
  variable named by ``auth.admin_key_env``, ``CDN_ADMIN_KEY`` by default) with the admin
  role, and ``auth.reader_key_file`` with the reader role. Kept only as hashes in memory.
- **The node token** (``auth.node_token`` / ``auth.node_token_file``): the shared secret
  the control plane sends to the nodes' admin endpoints and the nodes send back for
  heartbeats, purge catch-up and rate-limit policies. It has the ``node`` role only.

Roles nest: ``admin`` can do what ``purger`` can, which can do what ``reader`` can. Each
route declares the roles it admits (:func:`add_route`); no credential is 401, a valid
one of the wrong role is 403, both with a JSON ``{"error"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from cdn_core.errors import StartupError
from control_plane.config import AuthConfig
from control_plane.models import ApiKey

ADMIN, PURGER, READER, NODE = "admin", "purger", "reader", "node"
PUBLIC: frozenset[str] = frozenset()
READ = frozenset({READER, PURGER, ADMIN})
PURGE = frozenset({PURGER, ADMIN})
ADMIN_ONLY = frozenset({ADMIN})
NODE_ONLY = frozenset({NODE})
KEY_PREFIX = "cdn_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: ``name`` for logs and rate limiting, ``role``, and the API
    key id (None for bootstrap keys and the node token)."""

    name: str
    role: str
    key_id: str | None = None
    services: frozenset[str] | None = None
    """The services a limited key may touch (issue 20); None: every one."""


def new_secret() -> str:
    """A random secret (32 bytes, URL-safe base64) for keys and node tokens."""
    return secrets.token_urlsafe(32)


def digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def make_key() -> tuple[str, str, bytes, bytes]:
    """A new API key: ``(id, full key text, salt, digest)``."""
    key_id = secrets.token_hex(6)
    secret = new_secret()
    salt = os.urandom(16)
    return key_id, f"{KEY_PREFIX}{key_id}.{secret}", salt, digest(salt, secret)


def read_secret_file(path: str, what: str) -> str:
    """The first line of ``path``, stripped.

    Raises:
        StartupError: the file is missing, unreadable or empty (naming it).
    """
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StartupError(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc
    secret = text.splitlines()[0].strip() if text else ""
    if not secret:
        raise StartupError(f"{what} file {path} is empty")
    return secret


def write_secret_file(path: Path) -> str:
    """Return the secret in ``path``, creating the file (mode 0600) with a new one when
    it does not exist. Used by the one-host launcher."""
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text.splitlines()[0].strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret


class Authenticator:
    """Resolves a presented credential to a :class:`Principal` (all in memory: API keys
    are loaded from the store at startup and updated as they are created and revoked)."""

    def __init__(self) -> None:
        self._fixed: list[tuple[bytes, bytes, Principal]] = []  # (salt, digest, who)
        self._keys: dict[str, ApiKey] = {}
        self.node_token: str | None = None

    def configure(self, auth: AuthConfig, environ: dict[str, str] | None = None) -> None:
        """Read the bootstrap keys and the node token named by ``auth``.

        Raises:
            StartupError: a named file cannot be read or is empty.
        """
        env = os.environ if environ is None else environ
        self._fixed.clear()
        if auth.admin_key_file:
            self._add_fixed(read_secret_file(auth.admin_key_file, "admin key"), "bootstrap", ADMIN)
        if auth.admin_key_env and env.get(auth.admin_key_env):
            self._add_fixed(env[auth.admin_key_env].strip(), auth.admin_key_env.lower(), ADMIN)
        if auth.reader_key_file:
            self._add_fixed(read_secret_file(auth.reader_key_file, "reader key"), "reader", READER)
        token = auth.node_token.get_secret_value() if auth.node_token else None
        if auth.node_token_file:
            token = read_secret_file(auth.node_token_file, "node token")
        self.node_token = token or None
        if self.node_token:
            self._add_fixed(self.node_token, "node", NODE)

    def _add_fixed(self, secret: str, name: str, role: str) -> None:
        salt = os.urandom(16)
        self._fixed.append((salt, digest(salt, secret), Principal(name, role)))

    @property
    def has_admin(self) -> bool:
        return any(p.role == ADMIN for _, _, p in self._fixed) or any(
            k.role == ADMIN and k.revoked_at is None for k in self._keys.values()
        )

    def load(self, keys: Iterable[ApiKey]) -> None:
        self._keys = {k.id: k for k in keys}

    def remember(self, key: ApiKey) -> None:
        self._keys[key.id] = key

    def authenticate(self, presented: str) -> Principal | None:
        if presented.startswith(KEY_PREFIX) and "." in presented:
            key_id, _, secret = presented[len(KEY_PREFIX) :].partition(".")
            key = self._keys.get(key_id)
            if key is not None and hmac.compare_digest(digest(key.salt, secret), key.hash):
                if key.revoked_at is not None:
                    return None
                scope = frozenset(key.services) if key.services is not None else None
                return Principal(f"key:{key.id}", key.role, key.id, scope)
        found = None
        for salt, want, who in self._fixed:  # compare against all: no early exit
            if hmac.compare_digest(digest(salt, presented), want):
                found = who
        return found


def credential(request: web.Request) -> str | None:
    """The credential a request presents, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return request.headers.get("X-API-Key") or None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCESS = web.AppKey("access", dict)  # route -> frozenset of admitted roles (empty: public)
AUTHN = web.AppKey("authn", Authenticator)
PRINCIPAL = web.RequestKey("principal", Principal)  # the authenticated caller


def add_route(
    app: web.Application, method: str, path: str, handler: Handler, roles: frozenset[str]
) -> None:
    """Register a route admitting ``roles`` (``PUBLIC``: no credential needed)."""
    route = app.router.add_route(method, path, handler)
    app[ACCESS][route] = roles


def describe_roles(roles: frozenset[str]) -> str:
    order = [r for r in (READER, PURGER, ADMIN, NODE) if r in roles]
    if order[:1] == [READER]:
        return "any API key"
    return " or ".join(order) + (" role" if len(order) == 1 else " roles")
