"""The pure services core (issue 20): host matching, rule evaluation, cache keys,
validation with field paths, and version diffs. Named by behaviour."""

from __future__ import annotations

import pytest

from cdn_core.services.compiled import CompiledService, ServiceSet
from cdn_core.services.diff import diff
from cdn_core.services.keys import KeyRule, service_key
from cdn_core.services.matching import HostMap
from cdn_core.services.model import CacheKey, QueryKey
from cdn_core.services.validate import validate

ORIGIN = {"servers": [{"url": "http://127.0.0.1:18080"}]}


def doc(**fields):
    return {"name": "shop", "domains": ["shop.example.com"], "origins": ORIGIN, **fields}


def compiled(**fields) -> CompiledService:
    spec, problems = validate(doc(**fields))
    assert spec is not None, problems
    return CompiledService.compile(spec, 1)


# Host matching ---------------------------------------------------------------------------
def test_exact_domain_beats_wildcard_and_longer_wildcard_beats_shorter():
    hosts = HostMap({"*.example.com": "wild", "*.eu.example.com": "eu",
                     "www.example.com": "www"})
    assert hosts.lookup("www.example.com") == "www"
    assert hosts.lookup("img.example.com") == "wild"
    assert hosts.lookup("a.b.example.com") == "wild"  # any depth
    assert hosts.lookup("x.eu.example.com") == "eu"
    assert hosts.lookup("example.com") is None  # a wildcard never takes the apex
    assert hosts.lookup("example.org") is None


def test_service_set_selects_by_host_and_reports_versions():
    shop = compiled()
    spec, _ = validate({"name": "blog", "domains": ["*.blog.example.com"], "origins": ORIGIN})
    blog = CompiledService.compile(spec, 7)
    services = ServiceSet({"shop": shop, "blog": blog})
    assert services.select("shop.example.com") is shop
    assert services.select("a.blog.example.com") is blog
    assert services.select("other.example.com") is None
    assert services.versions() == {"shop": 1, "blog": 7}


# Cache rules -----------------------------------------------------------------------------
def test_first_matching_cache_rule_wins_with_status_and_method_conditions():
    svc = compiled(cache_rules=[
        {"match": {"path_prefix": "/img/", "statuses": [404]}, "ttl": 5},
        {"match": {"glob": "/img/*.jpg"}, "ttl": 86400, "mode": "override"},
        {"match": {"methods": ["GET"]}, "action": "no_store"},
    ])
    assert svc.cache_rule("GET", "/img/a.jpg", 404).ttl == 5
    assert svc.cache_rule("GET", "/img/a.jpg", 200).mode == "override"
    assert svc.cache_rule("GET", "/index.html", 200).action == "no_store"
    assert svc.cache_rule("POST", "/index.html", 200) is None


def test_bypass_is_decided_before_the_response():
    svc = compiled(cache_rules=[{"match": {"path_prefix": "/api/"}, "action": "bypass"}])
    assert svc.request_plan("GET", "http", "shop.example.com", "/api/cart").bypass
    assert not svc.request_plan("GET", "http", "shop.example.com", "/index.html").bypass


# Request rules ---------------------------------------------------------------------------
def test_http_to_https_redirect_only_for_http_and_keeps_the_query():
    svc = compiled(request_rules=[{"redirect": {"status": 308, "https": True}}])
    plan = svc.request_plan("GET", "http", "shop.example.com", "/a", "x=1")
    assert plan.redirect == (308, "https://shop.example.com/a?x=1")
    assert svc.request_plan("GET", "https", "shop.example.com", "/a").redirect is None


def test_path_redirect_then_header_and_rewrite_rules_apply_in_order():
    svc = compiled(request_rules=[
        {"match": {"path_prefix": "/old/"}, "redirect": {"status": 301, "to": "/new/",
                                                        "keep_query": False}},
        {"match": {"path_prefix": "/static/"}, "rewrite": {"prefix": "/static/", "to": "/assets/"}},
        {"set_headers": {"X-Site": "shop"}, "remove_headers": ["Cookie"]},
    ])
    assert svc.request_plan("GET", "http", "h", "/old/x", "q=1").redirect == (301, "/new/")
    plan = svc.request_plan("GET", "http", "h", "/static/app.js")
    assert plan.path == "/assets/app.js" and plan.redirect is None
    assert plan.set_fields == (("X-Site", "shop"),) and plan.remove_fields == {"cookie"}
    assert svc.request_plan("GET", "http", "h", "/index.html").path is None


def test_response_rules_all_apply_in_order():
    svc = compiled(response_rules=[
        {"set_headers": {"Strict-Transport-Security": "max-age=31536000"}},
        {"match": {"path_prefix": "/api/", "statuses": [200]},
         "set_headers": {"Access-Control-Allow-Origin": "*"}, "remove_headers": ["Server"]},
    ])
    api = svc.response_edits("GET", "/api/x", 200)
    assert [n for n, _ in api.set_fields] == ["Strict-Transport-Security",
                                              "Access-Control-Allow-Origin"]
    assert api.remove_fields == {"server"}
    assert len(svc.response_edits("GET", "/api/x", 500).set_fields) == 1
    assert not compiled().response_edits("GET", "/", 200)


def test_error_pages_replace_bodies_by_status():
    svc = compiled(error_pages={404: "<h1>gone</h1>"})
    assert svc.error_page(404) == "<h1>gone</h1>" and svc.error_page(500) is None


# Cache keys ------------------------------------------------------------------------------
def key(rule: CacheKey, query: str, fields: dict[str, str] | None = None,
        service: str = "shop") -> str:
    compiled = KeyRule.compile(rule)
    return service_key(service, "https", "shop.example.com", "/p", query, compiled) \
        + compiled.secondary((fields or {}).get)


def test_the_key_always_includes_the_service():
    assert key(CacheKey(), "") != key(CacheKey(), "", service="blog")


@pytest.mark.parametrize("mode,names,query,expect,unkeyed", [
    ("whole", [], "b=2&a=1", "b=2&a=1", []),
    ("sorted", [], "b=2&a=1&a=0", "a=1&a=0&b=2", []),
    ("allow", ["id", "page"], "utm_source=x&id=3&page=2", "id=3&page=2", ["x"]),
    ("deny", ["utm_*", "fbclid"], "utm_source=x&id=3&fbclid=y", "id=3", ["x", "y"]),
    ("ignore", [], "id=3", "", ["3"]),
])
def test_query_string_rules(mode, names, query, expect, unkeyed):
    rule = KeyRule.compile(CacheKey(query=QueryKey(mode=mode, names=names)))
    assert rule.query(query) == expect
    assert rule.unkeyed(query) == unkeyed  # what the reflection scan looks for


def test_named_headers_and_cookies_join_the_key():
    rule = CacheKey(headers=["X-Device"], cookies=["lang"])
    de = key(rule, "", {"x-device": "mobile", "cookie": "lang=de; session=abc"})
    fr = key(rule, "", {"x-device": "mobile", "cookie": "session=zzz; lang=fr"})
    de_other_session = key(rule, "", {"x-device": "mobile", "cookie": "lang=de; session=x"})
    assert de != fr and de == de_other_session


# Validation ------------------------------------------------------------------------------
def paths(document) -> dict[str, str]:
    spec, problems = validate(document)
    assert spec is None
    return {p.path: p.message for p in problems}


def test_every_field_error_is_reported_with_its_path():
    found = paths(doc(
        colour="blue",
        origins={"servers": [{"url": "ftp://origin.example.com"}]},
        cache_rules=[{"match": {"regex": "("}, "ttl": -1}],
    ))
    assert "colour" in found
    assert "scheme must be http or https" in found["origins.servers[0].url"]
    assert "does not compile" in found["cache_rules[0].match.regex"]
    assert "greater than or equal to 0" in found["cache_rules[0].ttl"]


def test_a_domain_of_another_service_is_refused():
    spec, problems = validate(doc(domains=["shop.example.com", "www.example.com"]),
                              taken={"www.example.com": "site"})
    assert spec is None and [p.line() for p in problems] == [
        "domains[1]: www.example.com belongs to service site"]


def test_a_rule_shadowed_by_an_earlier_one_can_never_match():
    found = paths(doc(cache_rules=[{"match": {"path_prefix": "/img/"}, "ttl": 60},
                                   {"match": {"path_prefix": "/img/big/"}, "ttl": 5}]))
    assert "can never match: cache_rules[0]" in found["cache_rules[1].match"]


def test_a_redirect_to_a_path_its_own_rule_matches_is_a_loop():
    found = paths(doc(request_rules=[{"match": {"path_prefix": "/a"},
                                      "redirect": {"to": "/a/b"}}]))
    assert "redirect loop" in found["request_rules[0].redirect.to"]


@pytest.mark.parametrize("bad,where", [
    ({"domains": ["*.com"]}, "domains"),
    ({"domains": []}, "domains"),
    ({"request_rules": [{"set_headers": {"Content-Length": "1"}}]}, "request_rules[0].set_headers"),
    ({"request_rules": [{"set_headers": {"X-A": "a\r\nX-B: b"}}]}, "request_rules[0].set_headers"),
    ({"request_rules": [{"match": {"path_prefix": "/"}}]}, "request_rules[0]"),
    ({"cache_rules": [{"action": "bypass", "ttl": 5}]}, "cache_rules[0]"),
    ({"cache_key": {"query": {"mode": "allow"}}}, "cache_key.query"),
    ({"error_pages": {200: "x"}}, "error_pages"),
    ({"name": "Shop!"}, "name"),
])
def test_bad_documents_name_the_field(bad, where):
    assert where in paths(doc(**bad))


def test_a_valid_document_has_no_problems():
    spec, problems = validate(doc(cache_rules=[{"match": {"glob": "*.css"}, "ttl": 3600}]))
    assert problems == [] and spec is not None and spec.domains == ["shop.example.com"]


# Diff ------------------------------------------------------------------------------------
def test_diff_by_field_path():
    a = doc(cache_rules=[{"ttl": 60}])
    b = doc(cache_rules=[{"ttl": 120}], error_pages={"404": "x"})
    lines = [c.line() for c in diff(a, b)]
    assert lines == ["~ cache_rules[0].ttl: 60 -> 120", "+ error_pages.404: 'x'"]
    assert diff(a, a) == []


# Cache rules on origin fields -------------------------------------------------------------
from cdn_core.services.cache_rules import apply_cache_rule  # noqa: E402
from cdn_core.services.model import CacheRule  # noqa: E402

TARGETED = ["CDN-Cache-Control", "Surrogate-Control"]


def test_override_replaces_the_lifetime_in_the_targeted_field_and_keeps_cache_control():
    rule = CacheRule(ttl=600, stale_if_error=60, mode="override")
    out = apply_cache_rule(rule, [("Cache-Control", "no-cache, max-age=5"),
                                  ("Surrogate-Control", "max-age=10")], TARGETED)
    assert ("Cache-Control", "no-cache, max-age=5") in out  # what browsers get stays
    assert ("CDN-Cache-Control", "max-age=600, stale-if-error=60") in out
    assert not any(h == "Surrogate-Control" for h, _ in out)


def test_override_keeps_private():
    out = apply_cache_rule(CacheRule(ttl=60, mode="override"),
                           [("Cache-Control", "private, max-age=5")], TARGETED)
    assert ("CDN-Cache-Control", "private, max-age=60") in out


def test_default_applies_only_without_an_origin_lifetime():
    rule = CacheRule(ttl=300)
    assert apply_cache_rule(rule, [("Cache-Control", "max-age=5")], TARGETED) == [
        ("Cache-Control", "max-age=5")]
    assert apply_cache_rule(rule, [("Expires", "Thu, 01 Jan 2037 00:00:00 GMT")], TARGETED) \
        == [("Expires", "Thu, 01 Jan 2037 00:00:00 GMT")]
    out = apply_cache_rule(rule, [("Cache-Control", "public")], TARGETED)
    assert ("CDN-Cache-Control", "public, max-age=300") in out


def test_no_store_rule_and_a_tier_without_targeted_fields():
    out = apply_cache_rule(CacheRule(action="no_store"), [("Cache-Control", "max-age=60")], [])
    assert out == [("Cache-Control", "no-store")]


# The documented files are valid ---------------------------------------------------------
def test_the_readme_service_file_and_the_shipped_example_validate():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    block = re.search(r"```yaml\n(name: shop\n.*?)```", readme, re.S)
    assert block, "README lost its service example"
    for text in (block.group(1), (root / "examples/services/example.yaml").read_text()):
        spec, problems = validate(yaml.safe_load(text))
        assert problems == [] and spec is not None
