"""Checks without a ready tool here: the restricted Pod Security Standard and strict schema
validation that fails on unknown kinds (kubernetes-validate only warns on them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ALLOWED_CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),
                ("monitoring.coreos.com/v1", "PrometheusRule")}


def pod_spec(document: dict[str, Any]) -> dict[str, Any] | None:
    kind = document.get("kind")
    if kind == "Pod":
        return document["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return document["spec"]["template"]["spec"]
    if kind == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def check_restricted(documents: list[dict[str, Any]]) -> list[str]:
    """Violations of the restricted Pod Security Standard (plus read-only root filesystem
    and resource limits, which kubecycle requires too)."""
    problems = []
    for document in documents:
        spec = pod_spec(document)
        if spec is None:
            continue
        name = f"{document['kind']}/{document['metadata']['name']}"
        pod = spec.get("securityContext", {})
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{name}: host namespaces")
        for volume in spec.get("volumes", []):
            if "hostPath" in volume:
                problems.append(f"{name}: hostPath volume {volume['name']}")
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            context = container.get("securityContext", {})

            def effective(key: str, context=context, pod=pod) -> Any:
                return context.get(key, pod.get(key))

            if effective("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if effective("runAsUser") == 0:
                problems.append(f"{where}: runs as UID 0")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities not dropped (ALL)")
            if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
                problems.append(f"{where}: adds capabilities")
            seccomp = (effective("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{where}: seccompProfile is {seccomp}")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if not container.get("resources", {}).get("limits"):
                problems.append(f"{where}: no resource limits")
            for port in container.get("ports", []):
                if "hostPort" in port:
                    problems.append(f"{where}: hostPort")
    return problems


def validate_strict(run: Callable, rendered: Path, version: str) -> None:
    """kubernetes-validate --strict; a kind without a schema fails unless allow-listed."""
    import yaml

    result = run("kubernetes-validate", "--strict", "-k", version, str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {(d["apiVersion"], d["kind"]) for d in yaml.safe_load_all(rendered.read_text()) if d}
    for line in (result.stdout + result.stderr).splitlines():
        if "Couldn't find schema" in line:
            assert any(f"kind {k} with api version {a}" in line for a, k in ALLOWED_CRDS), line
    assert kinds  # something was validated


# helm ends the last document with one blank line; duplicate keys and the rest stay errors
YAMLLINT = "{extends: relaxed, rules: {line-length: disable, empty-lines: {max-end: 1}}}"


def yamllint_clean(run: Callable, rendered: Path) -> None:
    result = run("yamllint", "-d", YAMLLINT, "-s", str(rendered))
    assert result.returncode == 0, result.stdout


def checkov_clean(run: Callable, folder: Path, minimum_passed: int) -> None:
    """Zero failed checks, and enough passed ones to show the files were really scanned
    (pointed at a dot-directory checkov scans nothing and exits 0)."""
    import json

    result = run("checkov", "-d", str(folder), "--framework", "kubernetes", "--compact",
                 "--quiet", "-o", "json")
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0, [
        c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["passed"] > minimum_passed
