"""The per-path rule matcher (origin.rules): glob semantics, first Cache-Control wins,
surrogate keys accumulate over every matching rule."""

from __future__ import annotations

import pytest

from origin.config import DEFAULT_RULES, CacheRule
from origin.rules import PathPolicy, RuleSet


def rules(*specs: dict) -> RuleSet:
    return RuleSet(CacheRule(**spec) for spec in specs)


@pytest.mark.parametrize(
    ("path", "cache_control", "keys"),
    [
        ("index.html", "public, max-age=60", "html site"),
        ("blog/2024/post.html", "public, max-age=60", "html site"),  # "*" spans "/"
        ("css/site.css", "public, max-age=3600", "css site"),
        ("js/app.js", "public, max-age=3600", "js site"),
        ("images/astronaut.jpg", "public, max-age=86400", "images site"),
        ("images/CREDITS.txt", "public, max-age=86400", "images site"),
        ("robots.txt", "public, max-age=300", "site"),
        ("INDEX.HTML", "public, max-age=300", "site"),  # case-sensitive
        ("xcss/site.css", "public, max-age=300", "site"),  # anchored at the start
    ],
)
def test_default_rules(path, cache_control, keys):
    policy = RuleSet(DEFAULT_RULES).lookup(path)
    assert policy.cache_control.startswith(cache_control)
    assert policy.surrogate_key == keys


def test_first_rule_with_cache_control_wins():
    rs = rules(
        {"match": "images/*", "surrogate_keys": ["img"]},
        {"match": "*.jpg", "cache_control": "max-age=1"},
        {"match": "images/*", "cache_control": "max-age=2"},
    )
    assert rs.lookup("images/a.jpg") == PathPolicy("max-age=1", "img")
    assert rs.lookup("images/a.png") == PathPolicy("max-age=2", "img")


def test_keys_keep_rule_order_without_duplicates():
    rs = rules(
        {"match": "*", "surrogate_keys": ["site", "all"]},
        {"match": "a/*", "surrogate_keys": ["a", "site"]},
    )
    assert rs.lookup("a/b").surrogate_key == "site all a"


def test_no_match_sends_neither_header():
    assert rules({"match": "*.css", "cache_control": "x"}).lookup("a.js") == PathPolicy(None, None)
    assert RuleSet(()).lookup("a.js") == PathPolicy(None, None)


def test_leading_slash_in_a_pattern_is_ignored():
    assert rules({"match": "/css/*", "cache_control": "c"}).lookup("css/a.css").cache_control == "c"


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("images/?.jpg", "images/a.jpg", True),
        ("images/?.jpg", "images/ab.jpg", False),
        ("*.[jp][pn]g", "x.png", True),
        ("*.[jp][pn]g", "x.gif", False),
        ("index.html", "index.html", True),
        ("index.html", "sub/index.html", False),
    ],
)
def test_glob_syntax(pattern, path, hit):
    policy = rules({"match": pattern, "cache_control": "c"}).lookup(path)
    assert (policy.cache_control == "c") is hit


@pytest.mark.parametrize(
    "spec",
    [
        {"match": ""},
        {"match": "/"},
        {"match": "*", "surrogate_keys": ["two words"]},
        {"match": "*", "cache_control": "a\nb"},
        {"match": "*", "cache_contrl": "typo"},
    ],
)
def test_invalid_rules_are_rejected(spec):
    with pytest.raises(ValueError):
        CacheRule(**spec)
