"""The training pipeline: every lifecycle stage as a kfp component, one DAG for local and
cluster runs. Imports only kfp and the component wrappers (no heavy libraries)."""


from collections.abc import Callable

from kfp import dsl

from kubecycle.components.evaluate.component import evaluate_model
from kubecycle.components.explain.component import explain_model
from kubecycle.components.explore.component import explore_data
from kubecycle.components.features.component import plan_features
from kubecycle.components.ingest.component import ingest_data
from kubecycle.components.package.component import package_model
from kubecycle.components.register.component import register_model
from kubecycle.components.split.component import split_data
from kubecycle.components.track.component import start_run, summarize_run
from kubecycle.components.train.component import train_model
from kubecycle.components.tune.component import candidate_families, tune_family
from kubecycle.components.validate.component import validate_data

PIPELINE_NAME = "kubecycle-training"

# (cpu request, memory request) per heavy stage; light stages take the cluster default.
RESOURCES = {"tune": ("1", "2Gi"), "train": ("1", "2Gi"), "explain": ("1", "1Gi")}


def _settle(task: dsl.PipelineTask, stage: str | None = None) -> dsl.PipelineTask:
    """Stage defaults: no caching (sources and the registry change between runs)."""
    task.set_caching_options(enable_caching=False)
    if stage in RESOURCES:
        cpu, memory = RESOURCES[stage]
        task.set_cpu_request(cpu).set_memory_request(memory)
    return task


def build_training_pipeline(parallelism: int = 2) -> Callable:
    """The training pipeline function; parallelism bounds the families tuned at once."""

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="kubecycle: ingest, validate, explore, split, features, tune, "
                              "train, evaluate, explain, register (gated), package")
    def training_pipeline(config: str, tracking_uri: str, run_name: str = "") -> dsl.Artifact:
        run = _settle(start_run(config=config, tracking_uri=tracking_uri, run_name=run_name))
        run_id = run.outputs["run_id"]
        raw = _settle(ingest_data(config=config))
        valid = _settle(validate_data(config=config, tracking_uri=tracking_uri, run_id=run_id,
                                      raw=raw.outputs["raw"]))
        clean, contract = valid.outputs["clean"], valid.outputs["contract"]
        eda = _settle(explore_data(config=config, tracking_uri=tracking_uri, run_id=run_id,
                                   clean=clean))
        split = _settle(split_data(config=config, clean=clean, contract=contract))
        train, test = split.outputs["train"], split.outputs["test"]
        plan = _settle(plan_features(config=config, tracking_uri=tracking_uri, run_id=run_id,
                                     contract=contract)).outputs["plan"]
        families = _settle(candidate_families(config=config, run_id=run_id, contract=contract))
        with dsl.ParallelFor(items=families.output, parallelism=parallelism) as item:
            tuned = _settle(tune_family(config=config, tracking_uri=tracking_uri,
                                        run_id=item.run_id, family=item.family, train=train,
                                        plan=plan), "tune")
        trained = _settle(train_model(
            config=config, tracking_uri=tracking_uri, run_id=run_id, train=train, plan=plan,
            tune_results=dsl.Collected(tuned.outputs["result"])), "train")
        model = trained.outputs["model"]
        evaluated = _settle(evaluate_model(tracking_uri=tracking_uri, run_id=run_id, model=model,
                                           test=test, plan=plan))
        explained = _settle(explain_model(config=config, tracking_uri=tracking_uri,
                                          run_id=run_id, model=model, test=test, plan=plan),
                            "explain")
        registered = _settle(register_model(
            config=config, tracking_uri=tracking_uri, run_id=run_id, model=model, train=train,
            test=test, contract=contract, evaluation=evaluated.outputs["evaluation"]))
        packaged = _settle(package_model(
            tracking_uri=tracking_uri, run_id=run_id, model=model,
            registration=registered.outputs["registration"], contract=contract))
        summary = _settle(summarize_run(
            tracking_uri=tracking_uri, run_id=run_id,
            selection=trained.outputs["selection"],
            evaluation=evaluated.outputs["evaluation"],
            importance=explained.outputs["importance"],
            registration=registered.outputs["registration"],
            bento=packaged.outputs["bento"],
            eda_report=eda.outputs["report"],
            evaluation_report=evaluated.outputs["report"],
            shap_report=explained.outputs["report"]))
        return summary.outputs["summary"]

    return training_pipeline
