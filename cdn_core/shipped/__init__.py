"""What the package ships besides code: the default configuration (``configs/``: every
service's YAML and ``stack.yaml``, the one-host topology ``cdnctl up`` starts) and the
example site the origin serves (``examples/site``), as package data.

In a checkout ``cdn_core/shipped/configs`` and ``cdn_core/shipped/examples/site`` are
symbolic links to the top-level ``configs/`` and ``examples/site`` (one copy of each);
the wheel holds the files themselves. Both are found through :mod:`importlib.resources`,
so an installed wheel runs from any directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from cdn_core.errors import ConfigError


def shipped(name: str) -> Path:
    """The shipped file or directory ``name`` (``"configs/stack.yaml"``,
    ``"examples/site"``) as a file-system path.

    Raises:
        ConfigError: the package is not installed as files (a zip import), or ``name``
            is not part of it.
    """
    res = files(__name__).joinpath(name)
    if not isinstance(res, Path) or not res.exists():
        raise ConfigError(f"{name} is not shipped in {__name__} (reinstall the package)")
    return res


def config_file(name: str) -> Path:
    """``configs/<name>`` under the current directory when it exists there (a checkout, or
    an operator's own copy), else the shipped one (same errors as :func:`shipped`)."""
    local = Path("configs") / name
    return local if local.is_file() else shipped(f"configs/{name}")


def example_site() -> Path:
    """The example site the origin serves by default: ``examples/site`` under the current
    directory when it exists there, else the shipped one."""
    local = Path("examples/site")
    return local if local.is_dir() else shipped("examples/site")
