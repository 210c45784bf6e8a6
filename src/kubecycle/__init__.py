"""kubecycle: the tabular ML lifecycle as Kubeflow Pipelines components.

Kept import-light on purpose: the serving bento copies parts of this package.
"""

__version__ = "0.1.0"
