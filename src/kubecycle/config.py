"""The one configuration model, loaded from YAML and validated with messages naming the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from kubecycle.catalog import DEFAULT_METRIC, METRICS, Task, family_names
from kubecycle.cluster_config import ClusterConfig
from kubecycle.config_base import Strict as _Strict
from kubecycle.errors import ConfigError
from kubecycle.selection import FamilyChoice, choose_families


class SqlSource(_Strict):
    """Rows from a database: a SQLAlchemy URL and a query."""

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db")
    query: str = Field(min_length=1)


class DataConfig(_Strict):
    """The `data:` section: where the rows come from, the label column and columns never used."""

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
    """The `split:` section: the held-out test share and the split's random seed."""

    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 42


class OutlierConfig(_Strict):
    """`cleaning.outliers`: training rows with extreme feature values (fitted on them only)."""

    method: Literal["none", "iqr", "zscore", "isolation_forest", "lof"] = "none"
    action: Literal["report", "drop"] = Field(
        "report", description="report: flag and count; drop: also remove them from training")
    factor: float = Field(1.5, gt=0.0, description="iqr: outside [Q1 - f*IQR, Q3 + f*IQR]")
    threshold: float = Field(3.0, gt=0.0, description="zscore: |z| above this")
    contamination: float = Field(
        0.05, gt=0.0, le=0.5, description="isolation_forest, lof: expected share of outliers")
    columns: list[str] = Field(
        default_factory=list, description="numeric columns to check (default: every one)")


class LabelNoiseConfig(_Strict):
    """`cleaning.label_noise`: likely mislabelled training rows (classification only)."""

    method: Literal["none", "confident_learning"] = "none"
    action: Literal["report", "drop"] = "report"
    folds: int = Field(5, ge=2, le=20, description="out-of-fold probabilities from this many folds")


class CleaningConfig(_Strict):
    """The `cleaning:` section: outlier and label-noise filters on the training rows."""

    outliers: OutlierConfig = OutlierConfig()
    label_noise: LabelNoiseConfig = LabelNoiseConfig()
    max_drop_share: float = Field(
        0.2, gt=0.0, le=1.0, description="stop when the filters would drop more of the rows")


class CreateConfig(_Strict):
    """`features.create`: new numeric features from products of the numeric columns."""

    products: Literal["none", "interactions", "polynomial"] = Field(
        "none", description="interactions: pairwise products; polynomial: those and squares")
    columns: list[str] = Field(
        default_factory=list, description="numeric columns to combine (default: all of them)")
    max_columns: int = Field(
        12, ge=2, description="combine at most this many columns (the first ones by the data's order)")


class FeatureConfig(_Strict):
    """The `features:` section: how columns are encoded, recognised as IDs and selected."""

    max_onehot_categories: int = Field(
        15, ge=2, description="categorical columns with more levels are ordinal-encoded")
    id_unique_ratio: float = Field(
        0.95, gt=0.0, le=1.0, description="string/int columns this unique are treated as IDs")
    select_k_best: int | None = Field(
        None, ge=1, description="keep the k best features after encoding (None = all)")
    create: CreateConfig = CreateConfig()


class ParamSpace(_Strict):
    """One parameter's search space: an int or float range (optionally log-scaled) or choices."""

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
    """The `tuning:` section: the search strategy, trials, CV folds and budget per family."""

    strategy: Literal["grid", "random", "bayesian"] = "bayesian"
    trials: int = Field(8, ge=1, description="trials per family (grid: points per axis cap)")
    cv_folds: int = Field(3, ge=2, le=20)
    parallelism: int = Field(2, ge=1, description="families tuned at the same time")
    timeout_seconds: float | None = Field(None, gt=0, description="per family search budget")
    sample_rows: int | None = Field(
        50_000, ge=100, description="tune on at most this many training rows (refit uses all)")


class ModelsConfig(_Strict):
    """The `models:` section: the candidate families and search spaces, or a pre-trained model.

    A pre-trained model takes the place of tuning and training.
    """

    families: list[str] | None = Field(None, description="candidate families (task default)")
    search_spaces: dict[str, dict[str, ParamSpace]] = Field(
        default_factory=dict, description="per family: parameter -> space, replaces defaults")
    pretrained: str | None = Field(
        None, description="a fitted model instead of training: .skops, .joblib/.pkl, XGBoost "
                          ".json/.ubj, LightGBM .txt file, or an MLflow URI (models:/, runs:/)")
    trust_pickle: bool = Field(
        False, description="allow loading a pretrained .joblib/.pkl file (pickle runs code)")
    trusted_types: list[str] = Field(
        default_factory=list, description="types a pretrained .skops file may hold beyond "
                                          "skops' own trusted ones (dotted names)")

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

    @model_validator(mode="after")
    def _pretrained_alone(self) -> ModelsConfig:
        if self.pretrained is not None and (self.families or self.search_spaces):
            raise ValueError("models.pretrained skips tuning and training; remove "
                             "models.families and models.search_spaces, or models.pretrained")
        return self


class ExplainConfig(_Strict):
    """The `explain:` section: the held-out rows SHAP and LIME explain."""

    rows: int = Field(200, ge=10, description="held-out rows SHAP explains (a sample)")
    lime_rows: int = Field(10, ge=0, description="of those, rows LIME explains too; 0: no LIME")
    lime_samples: int = Field(1000, ge=100, description="LIME's perturbed samples per row")
    top_features: int = Field(5, ge=1, description="top columns compared between SHAP and LIME")


class PromotionConfig(_Strict):
    """The `promotion:` section: the gate a challenger must pass to become the champion."""

    min_score: float | None = Field(None, description="challenger must reach this test score")
    min_improvement: float = Field(
        0.0, ge=0.0, description="challenger must beat the champion by more than this")
    policy: Literal["test", "recent", "both"] = Field(
        "recent", description="what decides when retraining brought labelled rows: the test "
                              "split, the newest labelled rows (held out), or both")
    recent_share: float = Field(
        0.3, ge=0.0, lt=1.0,
        description="share of the labelled window's rows, the newest, held out for the gate")
    min_recent_rows: int = Field(30, ge=1, description="held-out labelled rows the gate needs")


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
    id_columns: list[str] = Field(
        default_factory=list,
        description="logged input columns that name a prediction in labels without request_id")
    label_column: str | None = Field(
        None, min_length=1, description="the labels' column (default: data.target, else label)")
    performance_chunk: str = Field(
        "1d", pattern=r"^[0-9]+(\.[0-9]+)?[mhd]$",
        description="time chunk of realized performance (30m, 6h, 1d, ...)")
    performance_metric: Literal["accuracy", "f1", "rmse", "mae"] | None = Field(
        None, description="metric compared with the floor (default: f1 or rmse)")
    performance_floor: float | None = Field(
        None, description="retrain when the newest chunk's realized metric is worse than this")
    min_labels: int = Field(30, ge=1, description="labels a chunk needs before its metrics count")
    workspace: str | None = Field(
        None, min_length=1, description="Evidently workspace (folder, s3:// or gs:// URI) every "
                                        "pass's drift report is added to (`evidently ui "
                                        "--workspace` shows them)")


class ScoringConfig(_Strict):
    """`kubecycle predict`: batch scoring of files with a registered version."""

    id_columns: list[str] = Field(
        default_factory=list,
        description="input columns copied to the output beside the predictions (default: all)")
    chunk_rows: int = Field(20_000, ge=1, description="rows read, checked and scored at a time")
    max_reject_share: float = Field(
        0.01, ge=0.0, le=1.0,
        description="share of input rows breaking the contract above which the run fails")
    runtime: Literal["auto", "sklearn"] = Field(
        "auto", description="auto: ONNX Runtime when the graph reproduces the version's "
                            "predictions on its test rows; sklearn: the Pipeline")


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
    """The `mlflow:` section: the experiment runs are logged to and the registered model's name."""

    experiment: str = "kubecycle"
    model_name: str = Field("kubecycle-model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class KubecycleConfig(_Strict):
    """Everything a training run needs; only data.source (and target) are required."""

    data: DataConfig
    task: Task | None = Field(None, description="inferred from the target when omitted")
    metric: str | None = Field(None, description="primary metric (task default when omitted)")
    split: SplitConfig = SplitConfig()
    cleaning: CleaningConfig = CleaningConfig()
    features: FeatureConfig = FeatureConfig()
    tuning: TuningConfig = TuningConfig()
    models: ModelsConfig = ModelsConfig()
    explain: ExplainConfig = ExplainConfig()
    promotion: PromotionConfig = PromotionConfig()
    mlflow: MlflowConfig = MlflowConfig()
    output_dir: str | None = Field(None, description="where summary.json and reports go")
    monitoring: MonitoringConfig = MonitoringConfig()
    scoring: ScoringConfig = ScoringConfig()
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
        if self.cleaning.label_noise.method != "none" and task != "classification":
            raise ValueError(f"cleaning.label_noise applies to classification, not {task}; "
                             "set its method to none")

    def resolved_metric(self, task: Task) -> str:
        """The configured metric, else the task's default."""
        return self.metric or DEFAULT_METRIC[task]

    def family_choices(self, task: Task, rows: int) -> list[FamilyChoice]:
        """Every candidate family (configured, else the default search), run or skipped, and why."""
        return choose_families(task, rows, self.models.families)

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
        """Validate a config from its JSON form (what to_json writes)."""
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
    models = raw.get("models")
    pretrained = models.get("pretrained") if isinstance(models, dict) else None
    if base_dir is not None and isinstance(pretrained, str) and ":/" not in pretrained:
        path = Path(pretrained).expanduser()
        if not path.is_absolute():
            raw = {**raw, "models": {**models, "pretrained": str((base_dir / path).resolve())}}
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
