"""Run a rendered pod's containers with podman or docker as a kubelet would run them.

Everything comes from the rendered object, never retyped: image, command and args (with
Kubernetes' $(VAR) expansion), env (values, Secret and ConfigMap references, envFrom), the
security context (user, read-only root filesystem, dropped capabilities, no privilege
escalation) and the volume mounts. Stand-ins for what a cluster gives: an emptyDir or a claim
is a host folder, Secrets and ConfigMaps come from the rendered documents (or the test), and
Service names resolve to 127.0.0.1 (host network: every server listens on its own free port).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, others kept as written."""
    return VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


@dataclass
class Cluster:
    """What the rendered documents provide to pods: Secrets, ConfigMaps and Service names."""

    documents: list[dict[str, Any]]
    extra_secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def secret(self, name: str) -> dict[str, str] | None:
        if name in self.extra_secrets:
            return self.extra_secrets[name]
        for doc in self.documents:
            if doc["kind"] == "Secret" and doc["metadata"]["name"] == name:
                data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
                return {**data, **(doc.get("stringData") or {})}
        return None

    def config_map(self, name: str) -> dict[str, str] | None:
        for doc in self.documents:
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name:
                return dict(doc.get("data") or {})
        return None

    def service_hosts(self) -> list[str]:
        hosts = []
        for doc in self.documents:
            if doc["kind"] == "Service":
                name, namespace = doc["metadata"]["name"], doc["metadata"].get("namespace", "default")
                hosts += [name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
                          f"{name}.{namespace}.svc.cluster.local"]
        return hosts

    def find(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.documents:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
        raise KeyError(f"{kind}/{name} not rendered")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet, Job, CronJob or Pod."""
    if workload["kind"] == "Pod":
        return workload["spec"]
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


@dataclass
class PodRunner:
    """Starts one pod's containers; `claims` maps claim names to host folders."""

    engine: str
    cluster: Cluster
    spec: dict[str, Any]
    workdir: Path
    claims: dict[str, Path] = field(default_factory=dict)
    env_override: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"kc-test-{uuid.uuid4().hex[:8]}")
    started: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.volumes = {volume["name"]: self._volume(volume) for volume in self.spec.get("volumes", [])}

    def _volume(self, volume: dict[str, Any]) -> tuple[Path, bool]:
        """(host folder, read-only) standing in for one pod volume."""
        folder = self.workdir / self.name / volume["name"]
        if "emptyDir" in volume:
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o777)  # what the kubelet gives an emptyDir
            return folder, False
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in self.claims:
                raise KeyError(f"the pod mounts claim {claim}; give the test a folder for it")
            self.claims[claim].chmod(0o777)  # the kubelet makes it writable for fsGroup
            return self.claims[claim], False
        if "configMap" in volume:
            data = self.cluster.config_map(volume["configMap"]["name"]) or {}
            folder.mkdir(parents=True, exist_ok=True)
            for key, value in data.items():
                (folder / key).write_text(value)
            return folder, True
        if "secret" in volume:
            data = self.cluster.secret(volume["secret"]["secretName"]) or {}
            folder.mkdir(parents=True, exist_ok=True)
            for key, value in data.items():
                (folder / key).write_text(value)
            return folder, True
        raise NotImplementedError(f"volume {volume}")

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet builds it (envFrom, then env in order)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                data = self.cluster.secret(source["secretRef"]["name"])
                optional = source["secretRef"].get("optional", False)
            else:
                data = self.cluster.config_map(source["configMapRef"]["name"])
                optional = source["configMapRef"].get("optional", False)
            if data is None and not optional:
                raise KeyError(f"envFrom {source} is missing")
            env.update(data or {})
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
            elif "secretKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["secretKeyRef"]
                data = self.cluster.secret(ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise KeyError(f"env {item['name']}: Secret {ref['name']} key {ref['key']} missing")
                env[item["name"]] = data[ref["key"]]
            elif "configMapKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["configMapKeyRef"]
                env[item["name"]] = (self.cluster.config_map(ref["name"]) or {})[ref["key"]]
            elif "fieldRef" in item.get("valueFrom", {}):
                path = item["valueFrom"]["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": self.name, "metadata.namespace": "default",
                                     "status.podIP": "127.0.0.1"}.get(path, "")
            else:
                env[item["name"]] = ""
        return {**env, **self.env_override}

    def command(self, container: dict[str, Any], detach: bool, suffix: str) -> list[str]:
        """The engine's `run` command line for one container."""
        security = {**self.spec.get("securityContext", {}), **container.get("securityContext", {})}
        env = self.environment(container)
        args = [self.engine, "run", "--name", f"{self.name}-{suffix}", "--network", "host",
                "--pull", "never", "--init"]
        if detach:
            args.append("--detach")
        user = security.get("runAsUser")
        if user is not None:
            args += ["--user", f"{user}:{security.get('runAsGroup', user)}"]
        if security.get("readOnlyRootFilesystem"):
            args.append("--read-only")
            if self.engine == "podman":  # podman adds writable tmpfs mounts otherwise
                args.append("--read-only-tmpfs=false")
        for capability in security.get("capabilities", {}).get("drop", []):
            args.append(f"--cap-drop={capability}")
        for capability in security.get("capabilities", {}).get("add", []):
            args.append(f"--cap-add={capability}")
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        for mount in container.get("volumeMounts", []):
            folder, read_only = self.volumes[mount["name"]]
            source = folder / mount["subPath"] if mount.get("subPath") else folder
            mode = "ro" if read_only or mount.get("readOnly") else "rw"
            args += ["--volume", f"{source}:{mount['mountPath']}:{mode}"]
        for host in self.cluster.service_hosts():
            args += ["--add-host", f"{host}:127.0.0.1"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        memory = container.get("resources", {}).get("limits", {}).get("memory")
        if memory:
            args += ["--memory", memory.replace("Mi", "m").replace("Gi", "g")]
        if container.get("command"):
            args += ["--entrypoint", json.dumps([expand(c, env) for c in container["command"]])]
        args.append(container["image"])
        args += [expand(a, env) for a in container.get("args", [])]
        return args

    def run_init_containers(self, timeout: float = 600) -> None:
        """Run the init containers in order, each to a zero exit (else AssertionError)."""
        for container in self.spec.get("initContainers", []):
            command = self.command(container, detach=False, suffix=container["name"])
            self.started.append(f"{self.name}-{container['name']}")
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            assert result.returncode == 0, (container["name"], result.stdout[-3000:],
                                            result.stderr[-3000:])

    def start(self, container_name: str) -> str:
        """Start one of the pod's containers in the background; its engine name."""
        container = next(c for c in self.spec["containers"] if c["name"] == container_name)
        command = self.command(container, detach=True, suffix=container_name)
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        self.started.append(f"{self.name}-{container_name}")
        return f"{self.name}-{container_name}"

    def run(self, container_name: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        """Run one of the pod's containers to its exit (a Job's container)."""
        container = next(c for c in self.spec["containers"] if c["name"] == container_name)
        command = self.command(container, detach=False, suffix=container_name)
        self.started.append(f"{self.name}-{container_name}")
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.engine, "exec", container, *command], capture_output=True,
                              text=True, timeout=120)

    def logs(self, container: str) -> str:
        result = subprocess.run([self.engine, "logs", container], capture_output=True, text=True,
                                timeout=60)
        return result.stdout + result.stderr

    def stop(self, container: str, grace: int = 30) -> int:
        """SIGTERM, then SIGKILL after the grace period, as the kubelet stops a container;
        the container's exit code."""
        subprocess.run([self.engine, "stop", "--time", str(grace), container],
                       capture_output=True, timeout=grace + 60)
        result = subprocess.run([self.engine, "inspect", "--format", "{{.State.ExitCode}}",
                                 container], capture_output=True, text=True, timeout=60)
        return int(result.stdout.strip() or -1)

    def remove_all(self) -> None:
        for container in self.started:
            with contextlib.suppress(subprocess.SubprocessError):
                subprocess.run([self.engine, "rm", "--force", "--time", "5", container],
                               capture_output=True, timeout=120)


def wait_http(url: str, timeout: float = 180, runner: PodRunner | None = None,
              container: str | None = None, headers: dict[str, str] | None = None) -> None:
    """Wait until GET url answers 200; the container's log in the failure message."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2, headers=headers).status_code == 200:
                return
        time.sleep(1)
    log = runner.logs(container) if runner and container else ""
    raise AssertionError(f"{url} never answered 200:\n{log[-4000:]}")
