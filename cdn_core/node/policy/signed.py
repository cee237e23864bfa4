"""Signed URLs for protected content, checked at the edge before the cache lookup.

A URL under a protected prefix carries ``expires`` (Unix seconds), ``kid`` (key id) and
``sig``: hex HMAC-SHA256 (RFC 2104) with that key over :func:`signing_message` of the
path, the other query parameters as sent, ``expires``, ``kid`` and (when
``bind_client``) the client address. Bad, unknown-key or expired tokens get 403. The token
parameters are removed from the request before lookup, so every holder of a valid token
shares one cached object. Several keys may be active at once, which is how keys rotate
without downtime: add the new key, move signers to it, then remove the old one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cdn_core.clock import Clock
from cdn_core.heads import plain_response
from cdn_core.node.exchange.channel import ResponseChannel
from cdn_core.node.exchange.keys import normalize_host, prefix_form
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.edge import SignedUrlSettings

TOKEN_PARAMS = ("expires", "kid", "sig")


def signing_message(path: str, query: str, expires: str, kid: str, client: str) -> bytes:
    return f"{path}\n{query}\n{expires}\n{kid}\n{client}".encode()


def split_token(target: str) -> tuple[str, str, dict[str, str]]:
    """``(path, query without token parameters, token parameters)``; the remaining query
    keeps its parameters exactly as sent."""
    path, _, query = target.partition("?")
    kept, token = [], {}
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        if name in TOKEN_PARAMS:
            token[name] = value
        else:
            kept.append(part)
    return path, "&".join(kept), token


def sign_url(target: str, *, kid: str, secret: str, expires: int, client: str = "") -> str:
    """``target`` (path and query) with ``expires``, ``kid`` and ``sig`` appended."""
    path, query, _ = split_token(target)
    mac = hmac.new(secret.encode(), signing_message(path, query, str(expires), kid, client),
                   hashlib.sha256).hexdigest()
    sep = "&" if query else ""
    return f"{path}?{query}{sep}expires={expires}&kid={kid}&sig={mac}"


class SignedUrlGate:
    """Request gate enforcing :class:`SignedUrlSettings` (see module docstring)."""

    def __init__(self, settings: SignedUrlSettings, clock: Clock) -> None:
        self.prefixes = tuple(prefix_form(p) for p in settings.path_prefixes)
        self._configured = {k.id: k.secret.encode() for k in settings.keys}
        self.keys = dict(self._configured)
        self.bind_client = settings.bind_client
        self.clock = clock
        self.refused = 0
        # Prefixes of the services that ask for signed URLs, by host (set by
        # cdn_core.node.policy.services while any service has some; else None).
        self.service_prefixes: Callable[[str], tuple[str, ...]] | None = None

    def set_distributed_keys(self, keys: dict[str, str]) -> None:
        """Keys from the control plane (``/v1/signing-keys``), beside the configured ones;
        replacing the set at once is what lets a rotation happen without downtime."""
        self.keys = {**self._configured, **{k: v.encode() for k, v in keys.items()}}

    def check(self, target: str, client: str) -> tuple[str | None, str]:
        """``(None, target without token)`` when allowed, else ``(reason, target)``."""
        path, query, token = split_token(target)
        stripped = f"{path}?{query}" if query else path
        expires, kid, sig = (token.get(n, "") for n in TOKEN_PARAMS)
        if not (expires and kid and sig):
            return "missing signature", target
        secret = self.keys.get(kid)
        if secret is None:
            return "unknown key", target
        if not expires.isdigit() or len(expires) > 20 or int(expires) < self.clock.time():
            return "expired", target
        expected = hmac.new(secret, signing_message(path, query, expires, kid,
                                                    client if self.bind_client else ""),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig.lower()):
            return "bad signature", target
        return None, stripped

    def __call__(self, req: Request, conn: ResponseChannel) -> bool:
        prefixes = self.prefixes
        if self.service_prefixes is not None:
            prefixes += self.service_prefixes(normalize_host(req.fields.get("host", "")))
        if not prefixes or not prefix_form(req.target).startswith(prefixes):
            return True
        reason, target = self.check(req.target, req.client)
        if reason is None:
            req.target = target
            return True
        self.refused += 1
        head, body = plain_response(403, "Forbidden", f"signed URL refused: {reason}")
        conn.respond(head, b"", body, req.keep_alive)
        return False
