"""Submitting the training pipeline to a Kubeflow Pipelines cluster: one run or a schedule."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from kubecycle.config import KubecycleConfig
from kubecycle.errors import SubmitError
from kubecycle.settings import KF_PIPELINES_TOKEN, KF_PIPELINES_UI_ENDPOINT, KFP_TOKEN

if TYPE_CHECKING:
    from kubecycle.monitoring.window import LabelledWindow

DEFAULT_EXPERIMENT = "kubecycle"
DEFAULT_TIMEOUT_SECONDS = 3600.0
HEALTHZ = "/apis/v2beta1/healthz"
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")  # kfp's own wait misses CANCELED
PORT_FORWARD_HINT = "e.g. kubectl -n kubeflow port-forward svc/ml-pipeline 8888:8888 and --host http://localhost:8888"

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names) of the five fields a user gives; KFP's cron prepends seconds.
_CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day-of-month", 1, 31, ()),
                ("month", 1, 12, _MONTHS), ("day-of-week", 0, 6, _DAYS))
_CRON_PART = re.compile(r"(?P<range>\*|\?|(?P<low>[0-9]+|[A-Za-z]{3})(?:-(?P<high>[0-9]+|[A-Za-z]{3}))?)"
                        r"(?:/(?P<step>[0-9]+))?")


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    """What was created on the cluster; `state` is set only when the run was waited for."""

    experiment: str
    experiment_id: str
    url: str
    run_id: str | None = None
    recurring_run_id: str | None = None
    cron: str | None = None
    state: str | None = None


def _cron_value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.upper() in names:
        return names.index(text.upper()) + low
    if not text.isdigit():
        choices = f" or a name {names[0]}-{names[-1]}" if names else ""
        raise ValueError(f"{name} {text!r} is not a number in {low}-{high}{choices}")
    if not low <= int(text) <= high:
        raise ValueError(f"{name} {text!r} is outside {low}-{high}")
    return int(text)


def _check_cron_field(field: str, name: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for part in field.split(","):
        match = _CRON_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"{name} field {field!r} is malformed")
        if match["range"] == "?" and not name.startswith("day"):
            raise ValueError(f"'?' is only allowed in day-of-month and day-of-week, not in {name}")
        if match["low"]:
            first = _cron_value(match["low"], name, low, high, names)
            if match["high"] and _cron_value(match["high"], name, low, high, names) < first:
                raise ValueError(f"{name} range {part!r} runs backwards")
        if match["step"] is not None and int(match["step"]) < 1:
            raise ValueError(f"{name} step in {part!r} must be at least 1")


def cron_with_seconds(schedule: str) -> str:
    """Validate a 5-field cron ("m h dom mon dow") and return KFP's 6-field form ("0 m h dom mon dow")."""
    fields = schedule.split()
    try:
        if len(fields) != len(_CRON_FIELDS):
            raise ValueError(f"it has {len(fields)} fields, not 5")
        for field, spec in zip(fields, _CRON_FIELDS, strict=True):
            _check_cron_field(field, *spec)
    except ValueError as exc:
        raise SubmitError(
            f"--schedule {schedule!r} is not a valid cron expression: {exc}; give 5 fields "
            "'minute hour day-of-month month day-of-week', e.g. '0 3 * * *' (daily at 03:00)") from None
    return "0 " + " ".join(fields)


def token_from_env() -> str | None:
    """A bearer token for the KFP API: KUBECYCLE_KFP_TOKEN, then KF_PIPELINES_TOKEN."""
    return KFP_TOKEN.get() or KF_PIPELINES_TOKEN.get()


def _server_message(body: bytes | str | None) -> str:
    """The message of a KFP error answer ({"error"/"message": ...}), else its text, shortened."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict) and (data.get("message") or data.get("error")):
            return str(data.get("message") or data.get("error"))
    text = " ".join(text.split())
    if not text:
        return "(empty answer)"
    return text if len(text) <= 300 else f"{text[:300]}..."


def _http_problem(status: int, reason: str | None, body: bytes | str | None) -> str:
    """'HTTP 401 Unauthorized: <server message>' plus a hint for authentication failures."""
    hint = {401: "; pass a valid --token (or set KUBECYCLE_KFP_TOKEN)",
            403: "; the token has no access here (check --token and --namespace)"}.get(status, "")
    return f"HTTP {status} {reason or ''}".rstrip() + f": {_server_message(body)}{hint}"


def _unreachable(host: str, why: str) -> SubmitError:
    return SubmitError(f"KFP API at {host} is unreachable ({why}); check --host ({PORT_FORWARD_HINT})")


def check_api(host: str, token: str | None, timeout: float = 10.0) -> dict[str, Any]:
    """GET the API's healthz once, failing fast with a clear message; returns the health answer.

    kfp.Client would retry an HTTP error five times, 5 s apart, logging tracebacks.
    """
    session = requests.Session()
    session.trust_env = False  # kfp.Client ignores proxy variables too: probe the same way
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = session.get(f"{host}{HEALTHZ}", headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise _unreachable(host, f"no answer within {timeout:g} s") from None
    except requests.exceptions.SSLError:
        raise SubmitError(f"KFP API at {host} failed the TLS handshake (untrusted certificate?); "
                          "check --host") from None
    except requests.RequestException:
        raise _unreachable(host, "connection failed") from None
    finally:
        session.close()
    if response.is_redirect:
        raise SubmitError(f"KFP API at {host} redirected {HEALTHZ} to {response.headers.get('location')} "
                          "(a login page?); pass --token or point --host at the API")
    if response.status_code >= 400:
        raise SubmitError(f"KFP API at {host} answered {HEALTHZ} with "
                          f"{_http_problem(response.status_code, response.reason, response.content)}")
    try:
        health = response.json()
    except ValueError:
        health = None
    if not isinstance(health, dict):
        raise SubmitError(f"{host} is not the KFP API: {HEALTHZ} did not answer JSON; "
                          f"check --host ({PORT_FORWARD_HINT})")
    return health


@contextlib.contextmanager
def _api_errors(host: str, action: str) -> Iterator[None]:
    """Turn what kfp.Client raises into a SubmitError naming the host and the action."""
    import urllib3
    from kfp_server_api import ApiException

    try:
        yield
    except ApiException as exc:
        if not exc.status:  # kfp_server_api's wrapping of a TLS failure
            raise SubmitError(f"KFP API at {host} failed the TLS handshake ({exc.reason})") from None
        raise SubmitError(f"KFP API at {host} refused to {action}: "
                          f"{_http_problem(exc.status, exc.reason, exc.body)}") from None
    except urllib3.exceptions.HTTPError as exc:
        why = type(getattr(exc, "reason", None) or exc).__name__
        raise _unreachable(host, why) from None
    except (ValueError, TimeoutError) as exc:  # kfp's own checks, e.g. two experiments of one name
        raise SubmitError(f"could not {action} on KFP at {host}: {exc}") from None


def _client(host: str, token: str | None, namespace: str | None) -> Any:
    """kfp.Client for host: a bearer token when given; otherwise kfp's defaults for an explicit host."""
    import kfp

    options: dict[str, Any] = {"host": host}
    if token:
        options["existing_token"] = token
    if namespace:
        options["namespace"] = namespace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
        return kfp.Client(**options)


def _ui(host: str) -> str:
    return (KF_PIPELINES_UI_ENDPOINT.get() or host).rstrip("/")


def _create(client: Any, host: str, package: str, experiment: str, namespace: str | None,
            cron: str | None, arguments: dict[str, str], pipeline: str) -> SubmitResult:
    """Get or create the experiment, then create the run (or the recurring run for cron)."""
    name = f"kubecycle-{pipeline} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    with _api_errors(host, f"get or create experiment {experiment!r}"):
        experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
    if cron is None:
        with _api_errors(host, "create the run"):
            run = client.create_run_from_pipeline_package(
                pipeline_file=package, arguments=arguments, run_name=name,
                experiment_id=experiment_id)
        return SubmitResult(experiment, experiment_id, f"{_ui(host)}/#/runs/details/{run.run_id}",
                            run_id=run.run_id)
    with _api_errors(host, "create the recurring run"):
        recurring = client.create_recurring_run(
            experiment_id=experiment_id, job_name=f"kubecycle-{pipeline} ({cron})",
            params=arguments,
            cron_expression=cron, pipeline_package_path=package, max_concurrency=1,
            no_catchup=True, enabled=True)
    return SubmitResult(experiment, experiment_id,
                        f"{_ui(host)}/#/recurringrun/details/{recurring.recurring_run_id}",
                        recurring_run_id=recurring.recurring_run_id, cron=cron)


def _wait(client: Any, host: str, result: SubmitResult, timeout: float, poll_seconds: float) -> SubmitResult:
    """Poll the run until it reaches a final state; fail unless it SUCCEEDED."""
    deadline = time.monotonic() + timeout
    while True:
        with _api_errors(host, f"get run {result.run_id}"):
            run = client.get_run(result.run_id)
        state = str(run.state or "UNKNOWN")
        if state in FINAL_STATES:
            break
        if time.monotonic() >= deadline:
            raise SubmitError(f"run {result.run_id} did not finish within {timeout:g} s (still {state}); "
                              f"it goes on on the cluster: {result.url}")
        time.sleep(max(0.0, min(poll_seconds, deadline - time.monotonic())))
    if state != "SUCCEEDED":
        detail = f": {run.error.message}" if run.error is not None and run.error.message else ""
        raise SubmitError(f"run {result.run_id} ended {state}{detail}; see {result.url}")
    return dataclasses.replace(result, state=state)


def submit(
    cfg: KubecycleConfig,
    host: str,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    schedule: str | None = None,
    wait: bool = False,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    token: str | None = None,
    tracking_uri: str | None = None,
    namespace: str | None = None,
    poll_seconds: float = 5.0,
    on_submitted: Callable[[SubmitResult], None] | None = None,
    labelled: LabelledWindow | None = None,
    scoring: dict[str, str] | None = None,
) -> SubmitResult:
    """Compile the training (or batch scoring) pipeline and submit it to the KFP API at host.

    Args:
        cfg: the validated config, baked into the pipeline as the `config` default.
        host: the KFP API URL (http:// or https://).
        experiment: KFP experiment, created if missing.
        schedule: 5-field cron; creates a recurring run instead of one run.
        wait: wait for the run's final state (at most timeout seconds); fail unless SUCCEEDED.
        timeout: seconds `wait` waits for the final state before failing (the run goes on).
        token: bearer token; default: KUBECYCLE_KFP_TOKEN or KF_PIPELINES_TOKEN, else none.
        tracking_uri: MLflow URI the cluster tasks use (default: compile_pipeline's).
        namespace: the profile namespace of a multi-user KFP.
        poll_seconds: seconds between checks of the run's state while waiting.
        on_submitted: called once the run exists, before waiting.
        labelled: labelled rows of a monitored window to add to the training data (one run
            only: a schedule trains on the configured data).
        scoring: submit the batch scoring pipeline instead, with these arguments: `source`,
            `destination` and optionally `model` (URIs the cluster's pods reach).
    """
    from kubecycle.pipelines.run import compile_pipeline
    from kubecycle.pipelines.training import labelled_arguments

    host = host.strip().rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise SubmitError(f"--host {host!r} must start with http:// or https:// ({PORT_FORWARD_HINT})")
    cron = cron_with_seconds(schedule) if schedule is not None else None
    if cron is not None and wait:
        raise SubmitError("--wait waits for one run; a --schedule creates a recurring run, drop one of them")
    token = token or token_from_env()
    if check_api(host, token).get("multi_user") and not namespace:
        raise SubmitError(f"KFP at {host} is multi-user; pass --namespace (your profile namespace)")
    with tempfile.TemporaryDirectory(prefix="kubecycle-submit-") as folder:
        extra = {"tracking_uri": tracking_uri} if tracking_uri else {}
        pipeline = "scoring" if scoring is not None else "training"
        package = str(compile_pipeline(cfg, Path(folder) / "pipeline.yaml", pipeline=pipeline,
                                       **extra))
        with contextlib.redirect_stdout(io.StringIO()):  # kfp prints its own links; we return ours
            with _api_errors(host, "connect"):
                client = _client(host, token, namespace)
            arguments = scoring if scoring is not None else labelled_arguments(labelled)
            result = _create(client, host, package, experiment, namespace, cron, arguments,
                             pipeline)
    if on_submitted is not None:
        on_submitted(result)
    return _wait(client, host, result, timeout, poll_seconds) if wait else result
