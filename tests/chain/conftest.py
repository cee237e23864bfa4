"""Fixtures for chain tests (defined in :mod:`stackproc`)."""

from stackproc import stack  # noqa: F401
