"""The one configuration model, loaded from YAML and validated with messages naming the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kubecycle.catalog import DEFAULT_FAMILIES, DEFAULT_METRIC, METRICS, Task, family_names
from kubecycle.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqlSource(_Strict):
    """Rows from a database: a SQLAlchemy URL and a query."""

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db")
    query: str = Field(min_length=1)


class DataConfig(_Strict):
    source: str | SqlSource = Field(description=".csv/.parquet path, http(s) URL, or {sql: ...}")
    target: str | None = Field(None, description="label column; omit for clustering")
    drop_columns: list[str] = Field(default_factory=list, description="columns never used")

    @model_validator(mode="before")
    @classmethod
    def _unwrap_sql(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("source"), dict):
            source = dict(value["source"])
            if "sql" in source:
                if set(source) != {"sql"}:
                    raise ValueError("source: give either a path/URL or {sql: {url, query}}")
                value = {**value, "source": source["sql"]}
        return value


class SplitConfig(_Strict):
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 42


class FeatureConfig(_Strict):
    max_onehot_categories: int = Field(
        15, ge=2, description="categorical columns with more levels are ordinal-encoded")
    id_unique_ratio: float = Field(
        0.95, gt=0.0, le=1.0, description="string/int columns this unique are treated as IDs")
    select_k_best: int | None = Field(
        None, ge=1, description="keep the k best features after encoding (None = all)")


class ParamSpace(_Strict):
    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ParamSpace:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical parameter needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError("numeric parameter needs 'low' <= 'high'")
        elif self.log and self.low <= 0:
            raise ValueError("log-scaled parameter needs 'low' > 0")
        return self


class TuningConfig(_Strict):
    strategy: Literal["grid", "random", "bayesian"] = "bayesian"
    trials: int = Field(8, ge=1, description="trials per family (grid: points per axis cap)")
    cv_folds: int = Field(3, ge=2, le=20)
    parallelism: int = Field(2, ge=1, description="families tuned at the same time")
    timeout_seconds: float | None = Field(None, gt=0, description="per family search budget")
    sample_rows: int | None = Field(
        50_000, ge=100, description="tune on at most this many training rows (refit uses all)")


class ModelsConfig(_Strict):
    families: list[str] | None = Field(None, description="candidate families (task default)")
    search_spaces: dict[str, dict[str, ParamSpace]] = Field(
        default_factory=dict, description="per family: parameter -> space, replaces defaults")

    @field_validator("families")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("give at least one family, or omit the key for the task default")
        unknown = [f for f in value if f not in family_names()]
        if unknown:
            raise ValueError(f"unknown model family {unknown}; choose from {family_names()}")
        return value


class PromotionConfig(_Strict):
    min_score: float | None = Field(None, description="challenger must reach this test score")
    min_improvement: float = Field(
        0.0, ge=0.0, description="challenger must beat the champion by more than this")


class MonitoringConfig(_Strict):
    """When drift means retraining (`kubecycle monitor`)."""

    drift_share: float = Field(
        0.5, gt=0.0, le=1.0, description="share of drifted columns that means dataset drift")
    consecutive_windows: int = Field(
        1, ge=1, description="drifted windows in a row before retraining")
    cooldown_hours: float = Field(
        24.0, ge=0.0, description="no new retraining this soon after the last one")
    retrain: bool = Field(False, description="retrain automatically when the policy says so")
    sample_rows: int = Field(
        20_000, ge=100, description="rows of reference and window in Evidently's HTML report")


class DeployConfig(_Strict):
    """`kubecycle deploy`: where the serving manifests go and where they fetch the bento."""

    namespace: str = Field("mlops", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                           description="namespace of the serving Deployment")
    bento_store: str | None = Field(
        None, min_length=1,
        description="folder or URI prefix (s3://bucket/bentos) every trained bento is exported "
                    "to; the serving pods import <store>/<name>-<version>.bento from it")
    image: str | None = Field(None, description="serving image (default: the package's version)")
    replicas: int = Field(2, ge=1, description="stable replicas when the cluster has none yet")


class MlflowConfig(_Strict):
    experiment: str = "kubecycle"
    model_name: str = Field("kubecycle-model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


# Stages the cluster settings address (the component folders); a task takes its stage's
# settings, `default` applies to every task.
CLUSTER_STAGES = ("track", "ingest", "validate", "explore", "split", "features", "tune", "train",
                  "evaluate", "explain", "register", "package")
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
        if self.tolerations is not None:
            return list(self.tolerations)
        return [Toleration(key=self.accelerator, operator="Exists", effect="NoSchedule")]


class ClusterConfig(_Strict):
    """Kubernetes settings of the compiled pipeline, applied with kfp-kubernetes. kfp.local
    ignores them (CPU/memory/accelerator only warn); only `retries` also applies locally."""

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
        """Unknown stages are named; given fields override the built-in requests per field
        (an explicit null drops a built-in value, which then inherits from `default`)."""
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


class KubecycleConfig(_Strict):
    """Everything a training run needs; only data.source (and target) are required."""

    data: DataConfig
    task: Task | None = Field(None, description="inferred from the target when omitted")
    metric: str | None = Field(None, description="primary metric (task default when omitted)")
    split: SplitConfig = SplitConfig()
    features: FeatureConfig = FeatureConfig()
    tuning: TuningConfig = TuningConfig()
    models: ModelsConfig = ModelsConfig()
    promotion: PromotionConfig = PromotionConfig()
    mlflow: MlflowConfig = MlflowConfig()
    output_dir: str | None = Field(None, description="where summary.json and reports go")
    monitoring: MonitoringConfig = MonitoringConfig()
    deploy: DeployConfig = DeployConfig()
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, exclude=True,
        description="Kubernetes settings applied when compiling; not passed to the tasks, "
                    "not logged to MLflow")

    @field_validator("cluster", mode="before")
    @classmethod
    def _empty_cluster(cls, value: Any) -> Any:
        return {} if value is None else value  # `cluster:` with every key commented out

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; choose from {sorted(METRICS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KubecycleConfig:
        if self.task == "clustering" and self.data.target is not None:
            raise ValueError("task clustering takes no data.target; remove it")
        if self.task in ("classification", "regression") and self.data.target is None:
            raise ValueError(f"task {self.task} needs data.target (the label column)")
        if self.task is not None:
            self.check_for_task(self.task)
        return self

    def check_for_task(self, task: Task) -> None:
        """Raise ValueError if metric or families do not belong to the task."""
        if self.metric is not None and METRICS[self.metric].task != task:
            names = sorted(m for m, s in METRICS.items() if s.task == task)
            raise ValueError(f"metric {self.metric!r} is not a {task} metric; choose from {names}")
        bad = [f for f in self.models.families or [] if f not in family_names(task)]
        if bad:
            raise ValueError(
                f"models.families {bad} do not exist for {task}; choose from {family_names(task)}")

    def resolved_metric(self, task: Task) -> str:
        return self.metric or DEFAULT_METRIC[task]

    def resolved_families(self, task: Task) -> list[str]:
        return list(self.models.families or DEFAULT_FAMILIES[task])

    def to_json(self) -> str:
        """The config as JSON, the form pipeline tasks receive it in.

        kfp's local SubprocessRunner replaces every "python3" in a task's command line (the
        executor input with this JSON included) by its interpreter's path, which corrupted
        installed paths such as .../lib/python3.11/site-packages/...: "python3" is written
        with a JSON escape here, which decodes to the same text.
        """
        return self.model_dump_json().replace("python3", "pytho\\u006e3")

    @classmethod
    def from_json(cls, text: str) -> KubecycleConfig:
        return cls.model_validate_json(text)


def _format_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        parts_of_key = [str(p) for p in item["loc"]]
        key = ".".join(p for p in parts_of_key if not re.fullmatch(r"function-.*|str|.*\[.*", p))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README's config reference)"
        parts.append(f"{key or '<root>'}: {message}")
    return "; ".join(dict.fromkeys(parts))


def parse_config(raw: dict[str, Any], base_dir: Path | None = None) -> KubecycleConfig:
    """Validate a config mapping; relative file sources resolve against base_dir."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a YAML mapping with at least a 'data' key")
    source = raw.get("data", {}).get("source") if isinstance(raw.get("data"), dict) else None
    if base_dir is not None and isinstance(source, str) and "://" not in source:
        path = Path(source).expanduser()
        if not path.is_absolute():
            raw = {**raw, "data": {**raw["data"], "source": str((base_dir / path).resolve())}}
    try:
        return KubecycleConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {_format_errors(exc)}") from None


def load_config(path: str | Path) -> KubecycleConfig:
    """Read and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    try:
        return parse_config(raw or {}, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
