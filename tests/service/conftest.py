"""Fixtures for service tests (defined in :mod:`nodeharness`)."""

from nodeharness import clock, http, make_node, origin  # noqa: F401
