"""The Kubernetes settings of the compiled pipeline (the `cluster:` section of the config).

They cover resources per stage, secrets and config maps as env, node selectors, tolerations,
GPUs and labels. Applied with kfp-kubernetes at compile time; kfp.local ignores them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kubecycle.config_base import Strict as _Strict

# Stages the cluster settings address (the component folders); a task takes its stage's
# settings, `default` applies to every task.
CLUSTER_STAGES = ("track", "ingest", "validate", "explore", "split", "features", "cleaning",
                  "tune", "train", "evaluate", "explain", "register", "package", "score")
# Requests today's heavy stages get unless the config says otherwise.
DEFAULT_STAGE_RESOURCES: dict[str, dict[str, str]] = {
    "tune": {"cpu_request": "1", "memory_request": "2Gi"},
    "train": {"cpu_request": "1", "memory_request": "2Gi"},
    "explain": {"cpu_request": "1", "memory_request": "1Gi"},
}
# Quantities both Kubernetes and kfp's compiler accept (kfp rejects decimal memory and "k").
_CPU = re.compile(r"^([0-9]+m|[0-9]*\.?[0-9]+)$")
_MEMORY_UNITS = {"": 1, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_MEMORY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$")
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS_SUBDOMAIN = re.compile(rf"^(?=.{{1,253}}$){_SUBDOMAIN}$")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^({_SUBDOMAIN}/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATA_KEY = re.compile(r"^[-._A-Za-z0-9]+$")


def _millicores(cpu: str) -> float:
    return float(cpu[:-1]) if cpu.endswith("m") else float(cpu) * 1000


def _bytes(memory: str) -> int:
    number, unit = _MEMORY.fullmatch(memory).groups()  # type: ignore[union-attr]
    return int(number) * _MEMORY_UNITS[unit or ""]


def _k8s_name(value: str, what: str) -> str:
    if not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid {what} name (lowercase letters, digits, '-', '.')")
    return value


def _labels(value: dict[str, str], check_values: bool = True) -> dict[str, str]:
    for key, item in value.items():
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a valid label/annotation key")
        if check_values and not _LABEL_VALUE.fullmatch(item):
            raise ValueError(f"{item!r} (for {key!r}) is not a valid label value "
                             "(at most 63 letters, digits, '-', '_', '.')")
    return value


class EnvSource(_Strict):
    """A Secret or ConfigMap whose keys become environment variables of every task."""

    name: str = Field(description="Secret/ConfigMap name in the namespace the run executes in")
    keys: dict[str, str] = Field(
        min_length=1, description="key in the Secret/ConfigMap -> environment variable name")
    optional: bool = Field(False, description="start the pod even if the object is missing")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _k8s_name(value, "Secret/ConfigMap")

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, env in value.items():
            if not _DATA_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a valid Secret/ConfigMap key")
            if not _ENV_NAME.fullmatch(env):
                raise ValueError(f"{env!r} (for {key!r}) is not a valid environment variable name")
        return value


class StageResources(_Strict):
    """CPU and memory for a stage's pods; unset fields inherit from `default`."""

    cpu_request: str | None = Field(None, description="CPU quantity, e.g. 500m, 1, 1.5")
    cpu_limit: str | None = Field(None, description="CPU quantity, e.g. 500m, 1, 1.5")
    memory_request: str | None = Field(None, description="memory quantity, e.g. 512Mi, 2Gi")
    memory_limit: str | None = Field(None, description="memory quantity, e.g. 512Mi, 2Gi")

    @field_validator("cpu_request", "cpu_limit", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # YAML reads `cpu_request: 1` as a number
        if isinstance(value, str) and not _CPU.fullmatch(value):
            raise ValueError(f"{value!r} is not a CPU quantity; use cores (1, 0.5) or millicores (500m)")
        return value

    @field_validator("memory_request", "memory_limit", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not _MEMORY.fullmatch(value):
            raise ValueError(f"{value!r} is not a memory quantity; use a whole number with a unit "
                             "such as 512Mi, 2Gi or 1G")
        return value


class Toleration(_Strict):
    """A Kubernetes toleration for the task pods."""

    key: str | None = Field(None, description="taint key; omit (with operator Exists) for all taints")
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = Field(None, description="taint value (operator Equal only)")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="taint effect to match (None: all effects)")
    toleration_seconds: int | None = Field(None, ge=0, description="NoExecute only: eviction delay")

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without 'key' needs operator Exists")
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists takes no 'value'")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds needs effect NoExecute")
        return self


class GpuConfig(_Strict):
    """Accelerators for the training stages (`gpu: true` takes every default)."""

    stages: list[str] = Field(
        default_factory=lambda: ["tune", "train"], description="stages that get the accelerator")
    accelerator: str = Field("nvidia.com/gpu", description="extended resource name of the device")
    count: int = Field(1, ge=1, description="devices per task")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="extra node labels for these stages")
    tolerations: list[Toleration] | None = Field(
        None, description="None: tolerate the accelerator's taint (key = accelerator, Exists, "
                          "NoSchedule); [] for none")
    image: str | None = Field(
        None, description="image of these stages; default: the components-gpu image of this "
                          "version (PyTorch's CUDA build for family torch)")

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in CLUSTER_STAGES]
        if unknown:
            raise ValueError(f"unknown stage {unknown}; choose from {list(CLUSTER_STAGES)}")
        return value

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        return _labels(value)

    def resolved_tolerations(self) -> list[Toleration]:
        """The configured tolerations, else one of the accelerator's NoSchedule taint."""
        if self.tolerations is not None:
            return list(self.tolerations)
        return [Toleration(key=self.accelerator, operator="Exists", effect="NoSchedule")]


class ClusterConfig(_Strict):
    """Kubernetes settings of the compiled pipeline, applied with kfp-kubernetes.

    kfp.local ignores them (CPU/memory/accelerator only warn); only `retries` also applies
    locally.
    """

    secrets: list[EnvSource] = Field(
        default_factory=list, description="Secrets exposed as env vars to every task")
    config_maps: list[EnvSource] = Field(
        default_factory=list, description="ConfigMaps exposed as env vars to every task")
    resources: dict[str, StageResources] = Field(
        default_factory=dict, validate_default=True,
        description="per stage (or `default`) CPU/memory; merged over the built-in requests")
    node_selector: dict[str, str] = Field(default_factory=dict, description="node labels, all tasks")
    tolerations: list[Toleration] = Field(default_factory=list, description="for all tasks")
    gpu: GpuConfig | None = Field(None, description="accelerators for the training stages")
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets for pulling the components image")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] | None = Field(
        None, description="None: the Kubernetes default (IfNotPresent for a versioned tag)")
    pod_labels: dict[str, str] = Field(default_factory=dict, description="labels on every task pod")
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="annotations on every task pod")
    caching: bool = Field(False, description="let KFP reuse outputs of identical earlier tasks")
    retries: int = Field(0, ge=0, le=10, description="retries of a failed task")

    @field_validator("resources", mode="before")
    @classmethod
    def _merge_resources(cls, value: Any) -> Any:
        """Merge the given resources over the built-in requests, naming unknown stages.

        Given fields override the built-in requests per field (an explicit null drops a
        built-in value, which then inherits from `default`).
        """
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return value
        unknown = [s for s in value if s != "default" and s not in CLUSTER_STAGES]
        if unknown:
            raise ValueError(
                f"unknown stage {unknown}; choose from {['default', *CLUSTER_STAGES]}")
        merged: dict[str, Any] = {stage: dict(fields) for stage, fields in DEFAULT_STAGE_RESOURCES.items()}
        for stage, fields in value.items():
            if isinstance(fields, StageResources):
                fields = fields.model_dump(exclude_unset=True)
            if fields is None:
                fields = {}
            if not isinstance(fields, dict):
                merged[stage] = fields  # let pydantic report the type
                continue
            merged[stage] = {**merged.get(stage, {}), **fields}
        return merged

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        return _labels(value)

    @field_validator("pod_labels")
    @classmethod
    def _pod_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _labels(value)

    @field_validator("pod_annotations")
    @classmethod
    def _pod_annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _labels(value, check_values=False)

    @field_validator("image_pull_secrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        return [_k8s_name(name, "Secret") for name in value]

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        seen: dict[str, str] = {}
        for kind, sources in (("secrets", self.secrets), ("config_maps", self.config_maps)):
            for source in sources:
                for env in source.keys.values():
                    where = f"{kind} {source.name}"
                    if env in seen:
                        raise ValueError(f"environment variable {env} set twice ({seen[env]}, {where})")
                    seen[env] = where
        for stage in ("default", *CLUSTER_STAGES):
            for kind, amount in (("cpu", _millicores), ("memory", _bytes)):
                (request, from_request), (limit, from_limit) = (
                    self._resolve(stage, f"{kind}_request"), self._resolve(stage, f"{kind}_limit"))
                if request and limit and amount(request) > amount(limit):
                    raise ValueError(
                        f"resources.{from_request} {request} exceeds resources.{from_limit} "
                        f"{limit}; a request must not exceed its limit")
        return self

    def _resolve(self, stage: str, field: str) -> tuple[str | None, str]:
        """(value, where it comes from) of one resource field for a stage."""
        own = self.resources.get(stage)
        if own is not None and getattr(own, field) is not None:
            return getattr(own, field), f"{stage}.{field}"
        fallback = self.resources.get("default")
        return (getattr(fallback, field) if fallback else None), f"default.{field}"

    def resources_for(self, stage: str | None) -> StageResources:
        """The CPU/memory of a stage's tasks: its own entry over `default` (None: default only)."""
        if stage is not None and stage not in CLUSTER_STAGES:
            raise KeyError(f"unknown stage {stage!r}; choose from {list(CLUSTER_STAGES)}")
        fields = StageResources.model_fields
        return StageResources(**{f: self._resolve(stage or "default", f)[0] for f in fields})

    def gpu_for(self, stage: str | None) -> GpuConfig | None:
        """The accelerator settings if the stage runs on a GPU, else None."""
        return self.gpu if self.gpu is not None and stage in self.gpu.stages else None
