"""Helpers for the metrics tests: parse a ``/metrics`` page and list registered names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition page by ``(sample name, labels)``."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels``, or None."""
    return samples(text).get((name, frozenset(labels.items())))


def label_values(text: str) -> set[str]:
    return {v for (_, labels) in samples(text) for _, v in labels}


def registered_names(registry: CollectorRegistry) -> set[str]:
    """Names a query may use: every sample name (``_total``, ``_bucket``, ...) and family
    name the registry exports."""
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names
