"""Fixtures for service tests (defined in :mod:`nodeharness` and :mod:`originharness`)."""

from nodeharness import clock, http, make_node, origin, pki, wire  # noqa: F401
from originharness import site  # noqa: F401


def pytest_generate_tests(metafunc):
    """Modules with ``BOTH_WIRES = True`` run each test that uses ``http`` over HTTP/1.1
    and over HTTP/2 (h2c): one request path, one set of caching rules."""
    if "wire" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_WIRES", False):
        metafunc.parametrize("wire", ["http1", "h2c"], indirect=True)
