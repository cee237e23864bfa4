"""Fixtures for these tests (defined in :mod:`transformbench`)."""

from transformbench import make_transformer, transformer  # noqa: F401
