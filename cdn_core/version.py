"""The package's version, from one place: ``version`` in ``pyproject.toml``, as the
installed distribution's metadata reports it (PEP 566)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "tiered-cdn"


def package_version() -> str:
    """``"0.1.0"``; ``"0+unknown"`` when the code runs without being installed (a bare
    checkout on ``PYTHONPATH``)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
