"""One exception class per failure kind; each message says what was wrong and what to do.

`first_line` cuts a library's exception to the one line such a message quotes.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" when it has none), for one-line errors."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


class KubecycleError(Exception):
    """Base class: the CLI prints the message as one line and exits non-zero."""

    exit_code = 1


class SettingError(KubecycleError, ValueError):
    """An environment variable holds a value its setting does not accept."""

    exit_code = 2


class ConfigError(KubecycleError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2


class DataSourceError(KubecycleError):
    """The data source cannot be read (missing file, bad format, unreachable URL or database)."""


class DataValidationError(KubecycleError):
    """The data does not fit the task or the registered data contract."""


class TrainingError(KubecycleError):
    """No candidate model could be trained or scored."""


class PretrainedModelError(KubecycleError):
    """A pre-trained model cannot be used.

    It is unreadable, of an unknown format or untrusted, or its inputs or task do not fit the data.
    """

    exit_code = 2


class TrackingError(KubecycleError):
    """MLflow cannot be reached or refused a request."""


class PackagingError(KubecycleError):
    """The BentoML bento could not be built."""


class PipelineRunError(KubecycleError):
    """A pipeline task failed; the message names the task."""


class SubmitError(KubecycleError):
    """The pipeline could not be submitted to Kubeflow Pipelines, or a run waited for failed.

    Submitting fails on a bad --schedule or an unreachable or refusing API; the message names
    the host or run.
    """


class MonitoringError(KubecycleError):
    """Monitoring could not run: no champion or reference data, or a sink is unreachable."""


class RegistryError(KubecycleError):
    """The requested registered model, version or alias does not exist."""


class DeployError(KubecycleError):
    """Serving manifests could not be rendered, or the Kubernetes API refused or was unreachable."""
