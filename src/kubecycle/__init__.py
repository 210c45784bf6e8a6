"""kubecycle: the tabular ML lifecycle as Kubeflow Pipelines components.

Where each fact is decided (this package holds everything that is not a kfp stage):

- a column's kind, the request fields, which columns the model reads: contract.py
  (`column_kind`, `DataContract`); the feature plan's choices: components/features/core.py
- the config and its defaults: config.py (cluster settings: cluster_config.py); every
  environment variable: settings.py; model families and metrics: catalog.py
- estimators, preprocessing, scorers: modelling.py; the custom transformers inside every
  model: transformers.py; held-out scores: evaluation.py; drift reference statistics:
  reference.py
- MLflow names (aliases, tags, artifacts, bento names) and the registered version: registry.py;
  the one MLflow connection: tracking.py
- the promotion gate: components/register/gate.py; when to retrain: monitoring/policy.py
- a version's bento (build, export, record): serving/bento.py; what the service accepts and
  answers: serving/service.py
- what `kubecycle deploy` owns on a cluster (the model pin): deploy/pin.py

Kept import-light on purpose: the serving bento copies parts of this package.
"""

__version__ = "0.1.0"
