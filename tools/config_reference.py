"""``python -m tools.config_reference [--check]``: write ``docs/configuration.md``, the
reference of every setting of every service, from the pydantic models themselves (name,
type with its bounds, default, and the field's description: what it does, its unit, and
the RFC section or peer option it corresponds to).

``--check`` writes nothing and exits 1 when the committed file differs from what the
models say (CI runs it), or when a setting has no description.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cdn_core.node.settings.node import NodeConfig
from cdn_core.services.model import ServiceSpec
from control_plane.config import ControlPlaneConfig
from control_plane.stack import StackConfig
from origin.config import OriginConfig
from router.config import RouterConfig

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "configuration.md"
LONG_DEFAULT = 160  # characters of JSON past which a list of objects is summarised


@dataclass(frozen=True)
class Service:
    title: str
    model: type[BaseModel]
    files: str
    command: str
    env_prefix: str
    intro: str
    shipped: tuple[str, ...] = ()
    """Files of ``configs/`` whose values get a column (where they differ by tier)."""


SERVICES = (
    Service("Edge and mid tier", NodeConfig, "`configs/edge.yaml`, `configs/mid_tier.yaml`",
            "python -m edge --config F` / `python -m mid_tier --config F",
            "CDN_EDGE` / `CDN_MID_TIER",
            "One model for both caching tiers; `tier` says which. The two shipped files set "
            "what their columns show; everything else is the default.",
            ("edge.yaml", "mid_tier.yaml")),
    Service("Origin", OriginConfig, "`configs/origin.yaml`", "python -m origin --config F",
            "CDN_ORIGIN", "The static file server the CDN fills from."),
    Service("DNS router", RouterConfig, "`configs/router.yaml`",
            "python -m router --config F", "CDN_ROUTER",
            "The authoritative DNS server that answers with the nearest healthy edge."),
    Service("Control plane", ControlPlaneConfig, "`configs/control_plane.yaml`",
            "python -m control_plane --config F", "CDN_CONTROL_PLANE",
            "The REST API behind `cdnctl`: purges, push, nodes, keys, failover."),
    Service("Service document", ServiceSpec, "`examples/services/*.yaml`, any file",
            "cdnctl services apply F [--activate]", "(none: a version is a document)",
            "One site the CDN serves (issue 20), sent to the control plane and kept in "
            "immutable versions; nodes run the active one. Rules are lists: cache rules "
            "and request redirects first match wins, the rest apply in order. A `match` "
            "is `{path_prefix, glob, regex, methods, statuses}` (all given must hold)."),
    Service("One-host stack", StackConfig, "`configs/stack.yaml`", "cdnctl up --config F",
            "CDN_STACK", "The topology `cdnctl up` starts: every process and its addresses. "
            "Paths are relative to the stack file."),
)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model of a nested section (``cache: CacheSettings``), None for a leaf (a list
    of models is a leaf: its items are described in its row)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset, dict):
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return " | ".join(json.dumps(m.value) for m in annotation)
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_BOUNDS = ((annotated_types.Ge, "≥"), (annotated_types.Gt, ">"), (annotated_types.Le, "≤"),
           (annotated_types.Lt, "<"), (annotated_types.MinLen, "min length"),
           (annotated_types.MaxLen, "max length"))


def _bounds(field: FieldInfo) -> str:
    out = []
    for meta in field.metadata:
        for kind, sign in _BOUNDS:
            if isinstance(meta, kind):
                value = next(iter(vars(meta).values()) if hasattr(meta, "__dict__") else
                             (getattr(meta, s) for s in meta.__slots__))
                out.append(f"{sign} {value}")
    return ", ".join(out)


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "default_shown" in extra:
        return str(extra["default_shown"])
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    shown = json.dumps(_plain(value), default=str)
    if (len(shown) > LONG_DEFAULT and isinstance(value, list | tuple)
            and all(isinstance(v, BaseModel) for v in value)):
        return f"{len(value)} {'entry' if len(value) == 1 else 'entries'}, as in `configs/`"
    return f"`{shown}`"


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data (models dumped, enums by value, tuples as lists)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    return value


def _cell(text: str) -> str:
    """One Markdown table cell: one line, ``|`` and ``<`` escaped, reST roles
    (``:mod:`x```) and ````code```` as Markdown code."""
    text = re.sub(r":(?:mod|func|class|meth|attr|data):`~?([^`]+)`", r"`\1`", text)
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|").replace("<", "&lt;")


def _doc(model: type[BaseModel]) -> str:
    """The first paragraph of a section model's docstring."""
    doc = (model.__doc__ or "").strip().split("\n\n")[0]
    return _cell(doc)


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, FieldInfo]]:
    """Every setting of ``model``, sections included, depth first: ``(dotted name, field)``."""
    out: list[tuple[str, FieldInfo]] = []
    for name, field in model.model_fields.items():
        out.append((prefix + name, field))
        sub = _section(field.annotation)
        if sub is not None:
            out += rows(sub, f"{prefix}{name}.")
    return out


def undocumented() -> list[str]:
    """Settings without a description (a section may instead have a docstring)."""
    missing = []
    for svc in SERVICES:
        for name, field in rows(svc.model):
            sub = _section(field.annotation)
            if not field.description and not (sub is not None and sub.__doc__):
                missing.append(f"{svc.model.__name__}.{name}")
    return missing


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"cache": {"policy": "s3fifo"}}`` -> ``{"cache.policy": "s3fifo"}``."""
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def _shipped(files: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, _flatten(yaml.safe_load((ROOT / "configs" / name).read_text()) or {}))
            for name in files]


def _table(model: type[BaseModel], prefix: str,
           shipped: list[tuple[str, dict[str, Any]]]) -> list[str]:
    extra = "".join(f" `{name}` |" for name, _ in shipped)
    lines = [f"| Setting | Type | Default |{extra} Description |",
             "|---|---|---|" + "---|" * len(shipped) + "---|"]
    subsections = []
    for name, field in model.model_fields.items():
        sub = _section(field.annotation)
        if sub is not None:
            subsections.append((prefix + name, field, sub))
            continue
        kind = _type_name(field.annotation)
        bounds = _bounds(field)
        if bounds:
            kind += f" ({bounds})"
        values = "".join(
            f" {_cell('`' + json.dumps(v[prefix + name]) + '`') if prefix + name in v else ''} |"
            for _, v in shipped)
        lines.append(f"| `{prefix}{name}` | {_cell(kind)} | {_cell(_default(field))} |"
                     f"{values} {_cell(field.description or '')} |")
    out = lines if len(lines) > 2 else []
    for dotted, field, sub in subsections:
        out += ["", f"### `{dotted}`", "", _cell(field.description or _doc(sub)), ""]
        out += _table(sub, dotted + ".", shipped)
    return out


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m tools.config_reference` from the pydantic models; "
        "do not edit (CI checks that it is current). -->",
        "",
        "Every service reads one YAML file (`--config F`; without one, the defaults below). "
        "`cdnctl up` uses the files in `configs/` (a checkout's, else the copies the package "
        "ships). Command-line flags override the "
        "file, and so do environment variables named after the setting: the service's "
        "prefix, then each part of the dotted name in upper case after `__` "
        "(`CDN_EDGE__CACHE__MAX_BYTES=1073741824`; lists and objects as JSON). A bad value "
        "stops the service with one line naming the file and the field. Times are in "
        "seconds and sizes in bytes unless a description says otherwise.",
        "",
    ]
    out += [f"- [{s.title}](#{s.title.lower().replace(' ', '-')})" for s in SERVICES]
    for svc in SERVICES:
        out += ["", f"## {svc.title}", "", svc.intro, "",
                f"File: {svc.files}. Command: `{svc.command}`. Environment prefix: "
                f"`{svc.env_prefix}`.", ""]
        out += _table(svc.model, "", _shipped(svc.shipped))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__)
    p.add_argument("--check", action="store_true",
                   help="exit 1 if docs/configuration.md is not current; write nothing")
    args = p.parse_args(argv)
    missing = undocumented()
    if missing:
        print("settings without a description:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python -m tools.config_reference",
                  file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is current")
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
