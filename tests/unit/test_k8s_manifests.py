"""deploy/k8s (issue 22): the ConfigMap is current, every manifest and every rendered
kustomization is valid against the Kubernetes schemas, and the rendered example has the
shape the README promises."""

from __future__ import annotations

import subprocess

import yaml

from tools import k8s


def test_manifests_are_current_valid_and_render() -> None:
    assert k8s.check() == []


def test_an_invalid_manifest_is_named() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"replicas": "two", "selector": {}, "template": {}}}
    problems = k8s.validate(bad, "here.yaml")
    assert problems and "here.yaml: Deployment x" in problems[0] and "replicas" in problems[0]
    assert k8s.validate({**bad, "spec": {"replicaz": 1}}, "x")  # unknown field: strict


def test_rendered_example_has_the_topology() -> None:
    render = k8s.renderer()
    assert render is not None, "kubectl or kustomize is needed (apt-get install kubernetes-client)"
    out = subprocess.run([*render, str(k8s.DEPLOY / "overlays" / "example")],
                         capture_output=True, text=True, check=True).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    assert all(d["metadata"].get("namespace") == "cdn"
               for (kind, _), d in docs.items() if kind != "Namespace")
    cp = docs[("Deployment", "control-plane")]["spec"]
    assert cp["replicas"] == 2
    probes = cp["template"]["spec"]["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/v1/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/v1/healthz"
    mid = docs[("StatefulSet", "mid")]["spec"]
    assert mid["replicas"] == 3 and mid["serviceName"] == "mid"
    edge_pod = docs[("DaemonSet", "edge")]["spec"]["template"]["spec"]
    edge = edge_pod["containers"][0]
    assert edge_pod["hostNetwork"] is True  # admin port reachable at the registered IP
    assert "--upstream=http://mid-2.mid:8080" in edge["args"] and "--tls-port=443" in edge["args"]
    assert {(p["hostPort"], p["protocol"]) for p in edge["ports"] if "hostPort" in p} == {
        (80, "TCP"), (443, "TCP"), (443, "UDP"), (9080, "TCP")}
    assert {v["secret"]["secretName"] for v in edge_pod["volumes"] if "secret" in v} == {
        "cdn-secrets", "cdn-tls"}
    router = docs[("Service", "router")]["spec"]["ports"]
    assert {(p["port"], p["protocol"]) for p in router} == {(53, "UDP"), (53, "TCP")}
    for kind, name in (("StatefulSet", "postgres"), ("StatefulSet", "redis"),
                       ("ConfigMap", "cdn-configs"), ("Deployment", "origin")):
        assert (kind, name) in docs
    assert {n for k, n in docs if k == "PodDisruptionBudget"} == {
        "control-plane", "mid", "router"}
    for (kind, name), d in docs.items():
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                assert c["resources"]["requests"], (kind, name)
    assert docs[("Deployment", "control-plane")]["spec"]["template"]["spec"]["containers"][0][
        "image"] == "registry.example.com/tiered-cdn:0.1.0"
