"""The training pipeline: every lifecycle stage as a kfp component, one DAG for local and cluster runs.

Imports only kfp, kfp-kubernetes and the component wrappers (no heavy libraries); the config
arrives as an argument. No `from __future__ import annotations`: kfp reads the pipeline
function's annotations as types.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from kfp import dsl, kubernetes

from kubecycle.components.cleaning.component import clean_training_rows
from kubecycle.components.evaluate.component import evaluate_model
from kubecycle.components.explain.component import explain_model
from kubecycle.components.explore.component import explore_data
from kubecycle.components.features.component import plan_features
from kubecycle.components.ingest.component import ingest_data
from kubecycle.components.package.component import package_model
from kubecycle.components.pretrained.component import load_pretrained_model
from kubecycle.components.register.component import register_model
from kubecycle.components.split.component import split_data
from kubecycle.components.track.component import start_run, summarize_run
from kubecycle.components.train.component import train_model
from kubecycle.components.tune.component import candidate_families, tune_family
from kubecycle.components.validate.component import validate_data
from kubecycle.images import components_gpu_image

if TYPE_CHECKING:
    from kubecycle.cluster_config import ClusterConfig
    from kubecycle.config import KubecycleConfig
    from kubecycle.monitoring.window import LabelledWindow

PIPELINE_NAME = "kubecycle-training"


def labelled_arguments(labelled: "LabelledWindow | None") -> dict[str, str]:
    """The training pipeline's arguments that add a window's labelled rows to the training data.

    No window (None) gives no arguments: the configured data only.
    """
    if labelled is None:
        return {}
    return {"labelled": labelled.source, "labelled_window": labelled.window,
            "labelled_until": labelled.until}


def settle_task(task: dsl.PipelineTask, cluster: "ClusterConfig", stage: str | None = None
            ) -> dsl.PipelineTask:
    """Apply the config's cluster settings to a task of the given stage.

    A stage of None marks a helper task that takes only the `default` resources. Defaults: no
    caching (sources and the registry change between runs), no retries, CPU/memory requests for
    tune, train and explain, and no Kubernetes platform settings at all.
    """
    task.set_caching_options(enable_caching=cluster.caching)
    if cluster.retries:
        task.set_retry(num_retries=cluster.retries)
    resources = cluster.resources_for(stage)
    if resources.cpu_request:
        task.set_cpu_request(resources.cpu_request)
    if resources.cpu_limit:
        task.set_cpu_limit(resources.cpu_limit)
    if resources.memory_request:
        task.set_memory_request(resources.memory_request)
    if resources.memory_limit:
        task.set_memory_limit(resources.memory_limit)
    gpu = cluster.gpu_for(stage)
    if gpu is not None:
        task.set_accelerator_type(gpu.accelerator).set_accelerator_limit(gpu.count)
        task.set_container_image(gpu.image or components_gpu_image())
    for secret in cluster.secrets:
        kubernetes.use_secret_as_env(task, secret.name, dict(secret.keys), optional=secret.optional)
    for config_map in cluster.config_maps:
        kubernetes.use_config_map_as_env(task, config_map.name, dict(config_map.keys),
                                         optional=config_map.optional)
    node_selector = {**cluster.node_selector, **(gpu.node_selector if gpu else {})}
    for key, value in node_selector.items():
        kubernetes.add_node_selector(task, key, value)
    for toleration in [*cluster.tolerations, *(gpu.resolved_tolerations() if gpu else [])]:
        kubernetes.add_toleration(task, key=toleration.key, operator=toleration.operator,
                                  value=toleration.value, effect=toleration.effect,
                                  toleration_seconds=toleration.toleration_seconds)
    if cluster.image_pull_secrets:
        kubernetes.set_image_pull_secrets(task, list(cluster.image_pull_secrets))
    if cluster.image_pull_policy:
        kubernetes.set_image_pull_policy(task, cluster.image_pull_policy)
    for key, value in cluster.pod_labels.items():
        kubernetes.add_pod_label(task, key, value)
    for key, value in cluster.pod_annotations.items():
        kubernetes.add_pod_annotation(task, key, value)
    return task


def _model_task(cfg: "KubecycleConfig", settle: Callable, *, config: str, tracking_uri: str,
                run_id: str, contract: dsl.Artifact, train: dsl.Dataset, plan: dsl.Artifact
                ) -> dsl.PipelineTask:
    """The task whose `model` and `selection` outputs the later stages take.

    Loading models.pretrained, or tuning every candidate family (`tuning.parallelism` at once)
    and training the best.
    """
    if cfg.models.pretrained is not None:
        return settle(load_pretrained_model(config=config, tracking_uri=tracking_uri,
                                            run_id=run_id, train=train, plan=plan), "train")
    # a light helper: only the `default` settings, never the tuning resources or a GPU
    families = settle(candidate_families(config=config, run_id=run_id, contract=contract), None)
    with dsl.ParallelFor(items=families.outputs["Output"],
                         parallelism=cfg.tuning.parallelism) as item:
        tuned = settle(tune_family(config=config, tracking_uri=tracking_uri, run_id=item.run_id,
                                   family=item.family, train=train, plan=plan), "tune")
    return settle(train_model(
        config=config, tracking_uri=tracking_uri, run_id=run_id, train=train, plan=plan,
        family_choices=families.outputs["choices"],
        tune_results=dsl.Collected(tuned.outputs["result"])), "train")


def build_training_pipeline(cfg: "KubecycleConfig") -> Callable:
    """Build the training pipeline function for a config.

    `tuning.parallelism` bounds the families tuned at once, `models.pretrained` puts loading
    that model in place of tune and train, `cluster` sets caching, retries, resources and
    Kubernetes settings.
    """
    cluster = cfg.cluster

    def settle(task: dsl.PipelineTask, stage: str | None) -> dsl.PipelineTask:
        return settle_task(task, cluster, stage)

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="kubecycle: ingest, validate, explore, split, features, tune, "
                              "train, evaluate, explain, register (gated), package")
    def training_pipeline(config: str, tracking_uri: str, run_name: str = "", labelled: str = "",
                          labelled_window: str = "", labelled_until: str = "") -> dsl.Artifact:
        run = settle(start_run(config=config, tracking_uri=tracking_uri, run_name=run_name), "track")
        run_id = run.outputs["run_id"]
        raw = settle(ingest_data(config=config, labelled=labelled, labelled_window=labelled_window,
                                 labelled_until=labelled_until), "ingest")
        valid = settle(validate_data(config=config, tracking_uri=tracking_uri, run_id=run_id,
                                     raw=raw.outputs["raw"]), "validate")
        clean, contract = valid.outputs["clean"], valid.outputs["contract"]
        split = settle(split_data(config=config, clean=clean, contract=contract), "split")
        train, test = split.outputs["train"], split.outputs["test"]
        features = settle(plan_features(config=config, tracking_uri=tracking_uri, run_id=run_id,
                                        contract=contract), "features")
        plan, model_contract = features.outputs["plan"], features.outputs["model_contract"]
        cleaning = settle(clean_training_rows(config=config, tracking_uri=tracking_uri,
                                              run_id=run_id, train=split.outputs["train"],
                                              contract=model_contract, plan=plan), "cleaning")
        train = cleaning.outputs["cleaned"]
        eda = settle(explore_data(config=config, tracking_uri=tracking_uri, run_id=run_id,
                                  clean=clean, contract=contract,
                                  cleaning=cleaning.outputs["report"]), "explore")
        trained = _model_task(cfg, settle, config=config, tracking_uri=tracking_uri,
                              run_id=run_id, contract=contract, train=train, plan=plan)
        model = trained.outputs["model"]
        evaluated = settle(evaluate_model(tracking_uri=tracking_uri, run_id=run_id, model=model,
                                          test=test, plan=plan), "evaluate")
        explained = settle(explain_model(config=config, tracking_uri=tracking_uri,
                                         run_id=run_id, model=model, test=test, plan=plan),
                           "explain")
        registered = settle(register_model(
            config=config, tracking_uri=tracking_uri, run_id=run_id, model=model, train=train,
            test=test, recent=raw.outputs["recent"], contract=model_contract,
            evaluation=evaluated.outputs["evaluation"]),
            "register")
        packaged = settle(package_model(
            config=config, tracking_uri=tracking_uri, run_id=run_id, model=model,
            registration=registered.outputs["registration"], contract=model_contract, test=test),
            "package")
        summary = settle(summarize_run(
            tracking_uri=tracking_uri, run_id=run_id,
            selection=trained.outputs["selection"],
            cleaning=cleaning.outputs["report"],
            evaluation=evaluated.outputs["evaluation"],
            importance=explained.outputs["importance"],
            registration=registered.outputs["registration"],
            bento=packaged.outputs["bento"],
            eda_report=eda.outputs["report"],
            evaluation_report=evaluated.outputs["report"],
            shap_report=explained.outputs["report"]), "track")
        return summary.outputs["summary"]

    return training_pipeline
