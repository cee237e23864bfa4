"""TLS termination with SNI, TLS to https upstreams, and signed URLs at the edge (issue 12),
through real nodes on loopback with a generated CA."""

from __future__ import annotations

import ssl
import warnings

import aiohttp
import pytest
from nodeharness import Route, https_get, raw_exchange, tls_settings

from cdn_core.node.policy.signed import sign_url
from cdn_core.node.settings.edge import TlsCertificate
from cdn_core.node.wire.tls import server_context

CC60 = {"Cache-Control": "max-age=60"}
SECRET = "0123456789abcdef0123456789abcdef"


async def test_tls_termination_with_sni_and_separate_cache_key(pki, origin, make_node, http):
    origin.routes["/a"] = Route(headers=CC60, body=b"secure")
    edge = await make_node([origin.url], tls=tls_settings(pki))
    s, h, b = await https_get(edge.tls_port, "/a", pki["ca"])
    assert (s, b) == (200, b"secure") and "fwd=uri-miss" in h["Cache-Status"]
    s, h, _ = await https_get(edge.tls_port, "/a", pki["ca"])
    assert "hit" in h["Cache-Status"]
    _, h, _ = await http(edge, "/a")  # plain http is another scheme, another cache key
    assert "fwd=uri-miss" in h["Cache-Status"]
    assert origin.seen_headers[0]["X-Forwarded-Proto"] == "https"


async def test_tls_below_1_2_refused(pki, origin, make_node):
    origin.routes["/a"] = Route(headers=CC60)
    edge = await make_node([origin.url], tls=tls_settings(pki))
    ctx = server_context([TlsCertificate(cert_file=str(pki["cert"]), key_file=str(pki["key"]))])
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS 1.1 on purpose
        with pytest.raises(aiohttp.ClientError):
            await https_get(edge.tls_port, "/a", pki["ca"], max_version=ssl.TLSVersion.TLSv1_1)


async def test_https_upstream_verified_against_configured_ca(pki, origin, make_node, http):
    origin.routes["/u"] = Route(headers=CC60, body=b"via tls")
    mid = await make_node([origin.url], tier="mid", name="mid1", tls=tls_settings(pki))
    trusted = await make_node([f"https://127.0.0.1:{mid.tls_port}"], name="edge1",
                              upstream={"urls": [f"https://127.0.0.1:{mid.tls_port}"],
                                        "ca_file": str(pki["ca"]), "timeout": 5})
    s, _, b = await http(trusted, "/u")
    assert (s, b) == (200, b"via tls")
    untrusted = await make_node([f"https://127.0.0.1:{mid.tls_port}"], name="edge2")
    s, _, _ = await http(untrusted, "/u")
    assert s == 502  # the mid tier's certificate is not signed by a system CA


async def test_signed_urls_refuse_bad_tokens_and_share_one_cached_object(origin, make_node, http,
                                                                         clock):
    origin.routes["/private/doc"] = Route(headers=CC60, body=b"members only")
    edge = await make_node([origin.url], signed_urls={
        "path_prefixes": ["/private/"], "keys": [{"id": "k1", "secret": SECRET}]})
    now = int(clock.time())
    good = sign_url("/private/doc", kid="k1", secret=SECRET, expires=now + 60)
    other = sign_url("/private/doc", kid="k1", secret=SECRET, expires=now + 120)
    s, h, b = await http(edge, good)
    assert (s, b) == (200, b"members only")
    s, h, _ = await http(edge, other)
    assert s == 200 and "hit" in h["Cache-Status"]
    assert list(origin.hits) == ["/private/doc"]  # the token never reaches the origin
    expired = sign_url("/private/doc", kid="k1", secret=SECRET, expires=now - 1)
    assert (await http(edge, expired))[0] == 403
    assert (await http(edge, good.replace("sig=", "sig=0")))[0] == 403
    assert (await http(edge, "/private/doc"))[0] == 403
    wrong_key = sign_url("/private/doc", kid="k2", secret=SECRET, expires=now + 60)
    assert (await http(edge, wrong_key))[0] == 403



@pytest.mark.parametrize("target", [b"/%70rivate/doc", b"/x/%2e%2e/private/doc",
                                    b"/public/../private/doc", b"//private/doc",
                                    b"/PRIVATE/doc", b"http://www.example.test/private/doc",
                                    b"/private/doc?expires=" + b"9" * 5000 + b"&kid=k1&sig=0"])
async def test_signed_urls_judge_the_target_the_cache_keys(target, origin, make_node):
    # Each spelling reaches (or may reach, at a lenient origin) /private/doc: each needs
    # a signature, and none gets past it with 200 or 500.
    origin.routes["/private/doc"] = Route(headers=CC60, body=b"members only")
    edge = await make_node([origin.url], signed_urls={
        "path_prefixes": ["/private/"], "keys": [{"id": "k1", "secret": SECRET}]})
    out = await raw_exchange(edge.port, b"GET " + target + b" HTTP/1.1\r\n"
                             b"Host: www.example.test\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403"), out[:60]
    assert not origin.hits
