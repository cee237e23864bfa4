"""Typed configuration: pydantic models loaded from YAML, with flag and environment
overrides applied in one place (:func:`load_config`).

Errors name the file and the field, and are raised as :class:`ConfigError`; service entry
points print that one line and exit with status 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from cdn_core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

# "field.path: what is wrong", the form of our cross-field validators' messages.
_FIELD_FIRST = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (.+)", re.DOTALL)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable, numbers
    are finite, and a YAML boolean is not taken for a number (pydantic's lax mode would
    read ``interval: true`` as 1)."""

    # Attribute docstrings are field descriptions (docs/configuration.md shows them).
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _numeric(annotation):
                raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


def _numeric(annotation: Any) -> bool:
    """Whether a field annotation is int or float (alone or in an optional union)."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) not in (Union, UnionType):
        return False
    members = get_args(annotation)
    return bool not in members and any(m in (int, float) for m in members)


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no types
    """PyYAML's safe loader, except that a key repeated in one mapping is an error: YAML
    1.2 forbids it and PyYAML would silently keep the last value (two ``limits:`` blocks,
    the first one ignored)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only the keys written in this mapping: merged ones (``<<: *base``) may be
        # overridden, which is what merging is for.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key {key!r}", key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, or not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}: not valid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of settings")
    return data


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            # Nested overrides merge field by field; their None values mean "not given".
            base_value = out.get(key)
            if base_value is not None and not isinstance(base_value, dict):
                continue  # a scalar where a section belongs: left for validation to name
            merged = _merge(base_value or {}, value)
            # An empty mapping given on purpose turns the section on with its defaults
            # (``--synthetic``); one whose values were all None gave nothing.
            if merged or key in out or not value:
                out[key] = merged
        else:
            out[key] = value
    return out


def env_overrides(prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from the environment: ``<PREFIX>__A__B=v`` sets field ``a.b`` to YAML-parsed
    ``v`` (so ``CDN_EDGE__CACHE__MAX_BYTES=1000`` sets ``cache.max_bytes``)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    head = prefix.upper() + "__"
    for name, raw in env.items():
        if not name.startswith(head):
            continue
        path = [p.lower() for p in name[len(head) :].split("__") if p]
        if not path:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(raw) if raw else raw
    return out


def load_config(
    model: type[M],
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    env_prefix: str | None = None,
) -> M:
    """Build ``model`` from the YAML file at ``path`` (optional), then environment
    variables under ``env_prefix``, then ``overrides`` (command-line flags; ``None`` values
    are ignored). Later sources win.

    Raises:
        ConfigError: naming the source of the first invalid field (the file,
            ``<flags>`` or the environment variable) and the field.
    """
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    env = env_overrides(env_prefix) if env_prefix else {}
    flags = _merge({}, overrides or {})
    data = _merge(_merge(data, env), flags)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the intended one look missing: name the unknown one.
        errors = exc.errors()
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(err["loc"])
        # Our validators' messages carry pydantic's "Value error, " prefix: noise here;
        # and a scalar where a section belongs should not name our classes.
        message = err["msg"].removeprefix("Value error, ")
        gives = _sets
        if err["type"] == "model_type":
            got = "nothing" if err["input"] is None else type(err["input"]).__name__
            message = f"expected a mapping of settings, got {got}"
            gives = _gives_scalar  # the source of the scalar, not of fields merged under it
        named = None if loc else _FIELD_FIRST.match(message)
        if named:
            # A check across fields names the one at fault first ("admin_port: ...").
            loc = tuple(int(p) if p.isdigit() else p for p in named.group(1).split("."))
            message = named.group(2)
        field = ".".join(str(x) for x in loc) or "(top level)"
        if not loc:
            # Nothing names a field: every source that set something may have given it.
            sources = [str(path)] if path is not None else []
            if env_prefix and env:
                sources.append(f"${env_prefix.upper()}__*")
            if flags:
                sources.append("<flags>")
            source = " + ".join(sources) or "<defaults>"
        elif gives(flags, loc):
            source = "<flags>"
        elif env_prefix and gives(env, loc):
            source = "$" + "__".join([env_prefix.upper(), *(str(x).upper() for x in loc)])
        else:
            source = str(path) if path is not None else "<defaults>"
        raise ConfigError(f"{source}: {field}: {message}") from exc


def _gives_scalar(data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether ``data`` (one configuration source) has a value that is not a mapping at
    ``loc``."""
    for part in loc:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return not isinstance(data, dict)


def _sets(data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether ``data`` (one configuration source) gives the value at ``loc``, itself or
    as part of a value it gives whole."""
    for part in loc:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_dict or in_list):
            return not isinstance(data, dict | list) and data is not None
        data = data[part]
    return True
