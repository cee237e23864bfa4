"""``python -m tools.k8s [--write | --check]``: the Kubernetes manifests in deploy/k8s.

- ``--write`` regenerates ``deploy/k8s/base/configmap.yaml`` (the ConfigMap
  ``cdn-configs``) from ``configs/*.yaml``, so the cluster runs the same settings files
  as ``cdnctl up`` (kustomize refuses files outside the kustomization, so they are
  copied, never linked).
- ``--check`` (the default; CI runs it) fails when that file is stale, renders every
  kustomization under deploy/k8s with ``kubectl kustomize`` (or ``kustomize build``), and
  validates every manifest file and every rendered object against the Kubernetes
  OpenAPI schemas of :data:`KUBERNETES` with ``kubernetes-validate`` (offline, strict:
  unknown fields are errors). Exit 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "k8s"
CONFIGMAP = DEPLOY / "base" / "configmap.yaml"
CONFIG_FILES = ("control_plane.yaml", "mid_tier.yaml", "edge.yaml", "router.yaml", "origin.yaml")
KUBERNETES = "1.30.0"  # the schemas manifests are checked against (a supported release)


def configmap_text() -> str:
    """``configmap.yaml`` as it should be: every config file verbatim under its name."""
    data = {name: (ROOT / "configs" / name).read_text(encoding="utf-8")
            for name in CONFIG_FILES}
    doc = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cdn-configs"}, "data": data}
    head = ("# Generated from configs/ by `python -m tools.k8s --write`; edit those files,"
            " not this one.\n")
    return head + yaml.safe_dump(doc, sort_keys=False, width=100)


def renderer() -> list[str] | None:
    """The command that renders a kustomization directory (appended), or None."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def validate(doc: dict[str, Any], where: str) -> list[str]:
    """Problems of one object against the schemas (none: valid)."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        return [f"{where}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}: "
                f"{path}: {exc.message}"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError,
            kubernetes_validate.VersionNotSupportedError) as exc:
        return [f"{where}: {doc.get('kind')}: {exc}"]
    return []


def resource_files() -> list[Path]:
    """The files every kustomization lists under ``resources`` (whole objects; patches
    are only fragments until rendered)."""
    out = []
    for kustomization in sorted(DEPLOY.rglob("kustomization.yaml")):
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
        for entry in spec.get("resources") or []:
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                out.append(path)
    return out


def check() -> list[str]:
    """Every problem of deploy/k8s (see the module docstring)."""
    problems = []
    if not CONFIGMAP.exists() or CONFIGMAP.read_text(encoding="utf-8") != configmap_text():
        problems.append(f"{CONFIGMAP.relative_to(ROOT)} is stale: run python -m tools.k8s"
                        " --write")
    objects = 0
    for path in resource_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and "kind" in doc and "apiVersion" in doc and "metadata" in doc:
                objects += 1
                problems += validate(doc, str(path.relative_to(ROOT)))
    render = renderer()
    if render is None:
        problems.append("neither kubectl nor kustomize is installed: cannot render"
                        " (apt-get install kubernetes-client)")
        return problems
    for kustomization in sorted(DEPLOY.rglob("kustomization.yaml")):
        where = str(kustomization.parent.relative_to(ROOT))
        done = subprocess.run([*render, str(kustomization.parent)], capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode != 0:
            problems.append(f"{where}: {' '.join(render)} failed: "
                            f"{done.stderr.strip().splitlines()[-1:]}")
            continue
        rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
        if not rendered:
            problems.append(f"{where}: renders no objects")
        for doc in rendered:
            problems += validate(doc, f"{where} (rendered)")
    if objects == 0:
        problems.append("no manifests found under deploy/k8s")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.k8s", description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate configmap.yaml")
    parser.add_argument("--check", action="store_true", help="check and validate (default)")
    args = parser.parse_args(argv)
    if args.write:
        CONFIGMAP.write_text(configmap_text(), encoding="utf-8")
        print(f"wrote {CONFIGMAP.relative_to(ROOT)}")
        return 0
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print("deploy/k8s: manifests valid and rendered for Kubernetes", KUBERNETES)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
