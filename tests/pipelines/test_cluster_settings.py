"""The `cluster:` config section: compiled into the KFP IR (pipeline spec and the kfp-kubernetes
platform spec), validated with the key named, and invisible when nothing is set."""

import json
import warnings

import pytest
import yaml
from google.protobuf import json_format
from kfp import dsl
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from kubecycle.cluster_config import CLUSTER_STAGES
from kubecycle.config import parse_config
from kubecycle.errors import ConfigError
from kubecycle.pipelines.run import compile_pipeline
from kubecycle.pipelines.training import settle_task

DATA = {"source": "s3://bucket/data.csv", "target": "y"}
TASK_STAGE = {"start-run": "track", "summarize-run": "track", "ingest-data": "ingest",
              "validate-data": "validate", "explore-data": "explore", "split-data": "split",
              "plan-features": "features", "clean-training-rows": "cleaning",
              "candidate-families": None, "tune-family": "tune",
              "train-model": "train", "evaluate-model": "evaluate", "explain-model": "explain",
              "register-model": "register", "package-model": "package"}
EVERYTHING = {
    "secrets": [{"name": "mlflow-credentials",
                 "keys": {"username": "MLFLOW_TRACKING_USERNAME",
                          "password": "MLFLOW_TRACKING_PASSWORD"}},
                {"name": "artifact-store", "optional": True,
                 "keys": {"access-key": "AWS_ACCESS_KEY_ID", "secret-key": "AWS_SECRET_ACCESS_KEY"}}],
    "config_maps": [{"name": "mlflow-env", "keys": {"s3-endpoint": "MLFLOW_S3_ENDPOINT_URL"}}],
    "resources": {"default": {"cpu_request": "250m", "memory_request": "256Mi",
                              "memory_limit": "4Gi"},
                  "train": {"cpu_limit": 4},
                  "explain": {"memory_request": None}},
    "node_selector": {"kubernetes.io/os": "linux", "pool": "ml"},
    "tolerations": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
    "gpu": {"node_selector": {"accelerator": "t4"}},
    "image_pull_secrets": ["regcred"],
    "image_pull_policy": "Always",
    "pod_labels": {"team": "ml"},
    "pod_annotations": {"sidecar.istio.io/inject": "false"},
    "caching": True,
    "retries": 2,
}


def _compile(tmp_path, cluster=None, name="pipeline.yaml"):
    raw = {"data": DATA, **({"cluster": cluster} if cluster is not None else {})}
    path = compile_pipeline(parse_config(raw), tmp_path / name, "http://mlflow:5000")
    documents = list(yaml.safe_load_all(path.read_text()))
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    return path, documents, spec


def _tasks(spec):
    """task name -> (task spec, executor label), descending into the ParallelFor body."""
    found = {}

    def visit(dag):
        for name, task in dag.tasks.items():
            component = spec.components[task.component_ref.name]
            if component.WhichOneof("implementation") == "dag":
                visit(component.dag)
            else:
                found[name] = (task, component.executor_label)

    visit(spec.root.dag)
    return found


def _executors(spec):
    """executor label -> container spec (the deployment spec is a Struct in PipelineSpec)."""
    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    return {label: executor.container for label, executor in deployment.executors.items()}


def _k8s_executors(documents):
    platform = json_format.ParseDict(documents[1], pipeline_spec_pb2.PlatformSpec())
    executors = platform.platforms["kubernetes"].deployment_spec.executors
    return {label: json_format.ParseDict(json_format.MessageToDict(config),
                                         kubernetes_executor_config_pb2.KubernetesExecutorConfig())
            for label, config in executors.items()}


def test_default_config_compiles_as_before(tmp_path):
    path, documents, spec = _compile(tmp_path)
    assert len(documents) == 1 and "platforms" not in path.read_text()
    tasks = _tasks(spec)
    assert set(tasks) == set(TASK_STAGE)
    executors = _executors(spec)
    for name, (task, label) in tasks.items():
        assert not task.caching_options.enable_cache, name
        assert not task.HasField("retry_policy"), name
        resources = executors[label].resources
        expected = {"tune-family": ("1", "2Gi"), "train-model": ("1", "2Gi"),
                    "explain-model": ("1", "1Gi")}.get(name)
        if expected is None:
            assert not executors[label].HasField("resources"), name
        else:
            assert (resources.resource_cpu_request, resources.resource_memory_request) == expected
            assert not (resources.resource_cpu_limit or resources.resource_memory_limit)
            assert not resources.HasField("accelerator")
    # the cluster section is a compile-time concern: the tasks' config never carries it
    config = json.loads(spec.root.input_definitions.parameters["config"].default_value.string_value)
    assert "cluster" not in config
    # an empty `cluster:` (every key commented out) is the same as none
    same, _, _ = _compile(tmp_path, {}, "empty.yaml")
    assert same.read_text() == path.read_text()


def test_everything_set_reaches_the_ir(tmp_path):
    _, documents, spec = _compile(tmp_path, EVERYTHING)
    assert len(documents) == 2
    tasks = _tasks(spec)
    k8s = _k8s_executors(documents)
    assert set(k8s) == {label for _, label in tasks.values()}
    executors = _executors(spec)
    for name, (task, label) in tasks.items():
        stage = TASK_STAGE[name]
        on_gpu = stage in ("tune", "train")
        assert task.caching_options.enable_cache, name
        assert task.retry_policy.max_retry_count == 2, name

        resources = executors[label].resources
        cpu_request = {"tune": "1", "train": "1", "explain": "1"}.get(stage, "250m")
        memory_request = {"tune": "2Gi", "train": "2Gi"}.get(stage, "256Mi")
        assert resources.resource_cpu_request == cpu_request, name
        assert resources.resource_cpu_limit == ("4" if stage == "train" else ""), name
        assert resources.resource_memory_request == memory_request, name
        assert resources.resource_memory_limit == "4Gi", name
        if on_gpu:
            assert resources.accelerator.resource_type == "nvidia.com/gpu"
            assert resources.accelerator.resource_count == "1"
            assert executors[label].image == "ghcr.io/kubecycle/components-gpu:0.1.0", name
        else:
            assert executors[label].image == "ghcr.io/kubecycle/components:0.1.0", name
            assert not resources.HasField("accelerator"), name

        config = k8s[label]
        secrets = {s.secret_name: ({k.secret_key: k.env_var for k in s.key_to_env}, s.optional)
                   for s in config.secret_as_env}
        assert secrets == {
            "mlflow-credentials": ({"username": "MLFLOW_TRACKING_USERNAME",
                                    "password": "MLFLOW_TRACKING_PASSWORD"}, False),
            "artifact-store": ({"access-key": "AWS_ACCESS_KEY_ID",
                                "secret-key": "AWS_SECRET_ACCESS_KEY"}, True)}
        assert [(c.config_map_name, {k.config_map_key: k.env_var for k in c.key_to_env})
                for c in config.config_map_as_env] == [
            ("mlflow-env", {"s3-endpoint": "MLFLOW_S3_ENDPOINT_URL"})]
        selector = {"kubernetes.io/os": "linux", "pool": "ml"}
        assert dict(config.node_selector.labels) == (
            {**selector, "accelerator": "t4"} if on_gpu else selector), name
        tolerations = [(t.key, t.operator, t.value, t.effect) for t in config.tolerations]
        expected = [("dedicated", "Equal", "ml", "NoSchedule")]
        if on_gpu:
            expected.append(("nvidia.com/gpu", "Exists", "", "NoSchedule"))
        assert tolerations == expected, name
        assert [s.secret_name for s in config.image_pull_secret] == ["regcred"]
        assert config.image_pull_policy == "Always"
        assert dict(config.pod_metadata.labels) == {"team": "ml"}
        assert dict(config.pod_metadata.annotations) == {"sidecar.istio.io/inject": "false"}


def test_gpu_switch_and_resource_merging():
    cfg = parse_config({"data": DATA, "cluster": {
        "gpu": True, "resources": {"default": {"cpu_request": 0.5}, "tune": {"memory_limit": "8Gi"}}}})
    cluster = cfg.cluster
    tune = cluster.resources_for("tune")
    assert (tune.cpu_request, tune.memory_request, tune.memory_limit) == ("1", "2Gi", "8Gi")
    assert cluster.resources_for("ingest").cpu_request == "0.5"
    assert cluster.resources_for(None).memory_request is None
    assert cluster.gpu_for("train").accelerator == "nvidia.com/gpu"
    assert cluster.gpu_for("evaluate") is None and cluster.gpu_for(None) is None
    assert parse_config({"data": DATA, "cluster": {"gpu": False}}).cluster.gpu is None
    custom = parse_config({"data": DATA, "cluster": {"gpu": {"count": 2, "stages": ["train"],
                                                             "tolerations": []}}}).cluster
    assert custom.gpu_for("tune") is None and custom.gpu_for("train").count == 2
    assert custom.gpu.resolved_tolerations() == []
    with pytest.raises(KeyError):
        cluster.resources_for("training")


def test_cluster_settings_leave_local_runs_alone(tmp_path):
    """kfp.local runs a task settled with every cluster setting (the Kubernetes ones are
    ignored, CPU/memory/accelerator only warn)."""
    import kfp.local

    cluster = parse_config({"data": DATA, "cluster": {**EVERYTHING, "gpu": True}}).cluster

    @dsl.component
    def echo(text: str) -> str:
        return text

    @dsl.pipeline
    def tiny(text: str) -> str:
        return settle_task(echo(text=text), cluster, "train").output

    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                   pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tiny(text="hello").output == "hello"


@pytest.mark.parametrize(
    ("cluster", "named"),
    [
        ({"resources": {"tune": {"cpu_request": "lots"}}},
         "cluster.resources.tune.cpu_request: 'lots' is not a CPU quantity"),
        ({"resources": {"default": {"memory_limit": "1.5Gi"}}},
         "cluster.resources.default.memory_limit: '1.5Gi' is not a memory quantity"),
        ({"resources": {"tunning": {"cpu_request": "1"}}},
         "cluster.resources: unknown stage ['tunning']"),
        ({"resources": {"default": {"cpu_limit": "500m"}}},
         "resources.tune.cpu_request 1 exceeds resources.default.cpu_limit 500m"),
        ({"retries": -1}, "cluster.retries"),
        ({"gpus": True}, "cluster.gpus: unknown key"),
        ({"gpu": {"stages": ["training"]}}, "cluster.gpu.stages: unknown stage ['training']"),
        ({"secrets": [{"name": "My_Secret", "keys": {"password": "P"}}]},
         "cluster.secrets.0.name: 'My_Secret' is not a valid"),
        ({"secrets": [{"name": "mlflow", "keys": {"password": "MLFLOW-PASSWORD"}}]},
         "cluster.secrets.0.keys: 'MLFLOW-PASSWORD'"),
        ({"secrets": [{"name": "a", "keys": {"k": "TOKEN"}}],
          "config_maps": [{"name": "b", "keys": {"k": "TOKEN"}}]},
         "environment variable TOKEN set twice"),
        ({"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]},
         "cluster.tolerations.0: operator Exists takes no 'value'"),
        ({"image_pull_policy": "Sometimes"}, "cluster.image_pull_policy"),
        ({"node_selector": {"bad key!": "x"}}, "cluster.node_selector: 'bad key!'"),
        ({"image_pull_secrets": ["Reg Cred"]}, "cluster.image_pull_secrets: 'Reg Cred'"),
    ],
)
def test_bad_cluster_settings_name_the_key(cluster, named):
    with pytest.raises(ConfigError) as caught:
        parse_config({"data": DATA, "cluster": cluster})
    assert named in str(caught.value)


def test_every_stage_the_dags_use_is_configurable():
    scoring = {"score-files": "score"}
    assert {s for s in {**TASK_STAGE, **scoring}.values() if s} == set(CLUSTER_STAGES)
