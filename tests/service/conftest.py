"""Fixtures for service tests (defined in :mod:`nodeharness` and :mod:`originharness`)."""

from nodeharness import clock, http, make_node, origin, pki  # noqa: F401
from originharness import site  # noqa: F401
