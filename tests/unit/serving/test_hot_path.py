"""The hot path: the dispatcher itself (in-process ASGI), and a served bento answering every
request exactly as BentoML's full path answers it (a second server with the access log on),
with its request metrics counting the hot requests."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import requests
from starlette.responses import JSONResponse

from kubecycle.serving.hot_path import HotRoutes
from kubecycle.tracking import free_port

MODEL = "penguins"  # the name penguins_bento registers


def _scope(path: str, method: str = "POST") -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "http_version": "1.1", "scheme": "http",
            "headers": [(b"content-type", b"application/json")],
            "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}


def _call(app, scope: dict, chunks: list[bytes]) -> tuple[int, dict, bytes]:
    """Run one request through an ASGI app: status, headers and body of the answer."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


class _Recorder:
    """Stands for BentoML's app: answers 299 with the path and the body it received."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.seen.append((scope["path"], body))
        await JSONResponse({"path": scope["path"]}, 299)(scope, receive, send)


def _routes(handlers: dict, timeout: float = 5.0) -> tuple[HotRoutes, _Recorder, _Recorder]:
    full, protocols = _Recorder(), _Recorder()
    return (HotRoutes(full, handlers, (protocols, ("/v2", "/invocations")), timeout,
                      [(b"server", b"BentoML Service/test")]), full, protocols)


def test_a_handler_answers_its_route_with_the_whole_body_and_the_server_header():
    async def echo(body: bytes, headers) -> JSONResponse:
        return JSONResponse({"body": body.decode(), "type": headers["content-type"]})

    routes, full, _ = _routes({"/predict": echo})
    status, headers, body = _call(routes, _scope("/predict"), [b'{"rec', b'ord": 1}'])
    assert status == 200 and json.loads(body) == {"body": '{"record": 1}', "type": "application/json"}
    assert headers["server"] == "BentoML Service/test" and not full.seen


def test_a_declined_request_is_replayed_to_bentoml_with_its_body():
    async def decline(body: bytes, headers) -> None:
        return None

    routes, full, _ = _routes({"/predict": decline})
    status, _, _ = _call(routes, _scope("/predict"), [b'{"record": ', b'{"a": "x"}}'])
    assert status == 299 and full.seen == [("/predict", b'{"record": {"a": "x"}}')]


def test_a_slow_handler_is_answered_504_as_bentoml_answers_it():
    async def slow(body: bytes, headers) -> JSONResponse:
        await asyncio.sleep(5)
        return JSONResponse({})

    routes, full, _ = _routes({"/predict": slow}, timeout=0.05)
    status, _, body = _call(routes, _scope("/predict"), [b"{}"])
    assert status == 504 and "0.05 seconds" in json.loads(body)["error"] and not full.seen


@pytest.mark.parametrize(("path", "method", "goes_to"), [
    ("/predict", "GET", "full"),  # a hot path, but not its method
    ("/explain", "POST", "full"),
    ("/metrics", "GET", "full"),
    ("/v2", "GET", "protocols"),
    ("/v2/models/penguins", "GET", "protocols"),
    ("/v2x", "GET", "full"),  # not below /v2
    ("/invocations", "POST", "protocols"),
])
def test_other_requests_go_to_the_protocols_app_or_to_bentoml(path, method, goes_to):
    async def never(body: bytes, headers) -> None:
        raise AssertionError("not a hot request")

    routes, full, protocols = _routes({"/predict": never})
    status, _, _ = _call(routes, _scope(path, method), [b""])
    assert status == 299 and [p for p, _ in {"full": full, "protocols": protocols}[goes_to].seen] == [path]


@pytest.fixture(scope="module")
def full_path(penguins_bento, module_servers, tmp_path_factory):
    """The same bento served with the access log on: every request takes BentoML's full path.

    It has a BentoML home of its own: a server wipes its home's Prometheus folder on start.
    """
    import bentoml

    folder = tmp_path_factory.mktemp("full-path")
    bento = bentoml.get(penguins_bento["tag"])
    for stored in (bento, *(bentoml.models.get(model.tag) for model in bento.info.models)):
        kind = "bentos" if stored is bento else "models"
        shutil.copytree(stored.path, folder / "bentoml" / kind / stored.tag.name / stored.tag.version)
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(folder / "bentoml"), "KUBECYCLE_ACCESS_LOG": "true"}
    module_servers.start([str(Path(sys.executable).parent / "bentoml"), "serve",
                          penguins_bento["tag"], "--host", "127.0.0.1", "--port", str(port)],
                         env, port, log=folder / "serve.log")
    return {"base": f"http://127.0.0.1:{port}", "log": folder / "serve.log"}


def _requests(record: dict) -> list[tuple[str, str, dict | str]]:
    """(path, content type, body): good and bad requests on every hot route."""
    v2 = {"inputs": [{"name": k, "shape": [1], "datatype": "FP64" if isinstance(v, int | float) else "BYTES",
                      "data": [v]} for k, v in record.items()]}
    return [
        ("/predict", "application/json", {"record": record}),
        ("/predict", "application/json", {"record": {**record, "bill_length_mm": "long"}}),
        ("/predict", "application/json", {"record": {k: v for k, v in record.items() if k != "island"}}),
        ("/predict", "application/json", {"records": [record]}),
        ("/predict", "application/json", "not json"),
        ("/predict", "text/plain", {"record": record}),
        ("/predict_batch", "application/json", {"records": [record, record]}),
        ("/predict_batch", "application/json", {"records": []}),
        (f"/v2/models/{MODEL}/infer", "application/json", v2),
        (f"/v2/models/{MODEL}/versions/1/infer", "application/json", v2),
        (f"/v2/models/{MODEL}/infer", "application/json", {"inputs": []}),
        ("/invocations", "application/json", {"dataframe_records": [record]}),
        ("/invocations", "application/json", {"dataframe_records": [{"island": "Atlantis"}]}),
    ]


def _without_ids(answer: requests.Response) -> object:
    """The answer's JSON without the request ids, which differ between servers."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("request_id", "request_ids", "id")}
    return body


def test_hot_answers_equal_the_full_paths_for_good_and_bad_requests(served, full_path,
                                                                    penguins_bento):
    for path, media_type, body in _requests(penguins_bento["record"]):
        data = body if isinstance(body, str) else json.dumps(body)
        answers = [requests.post(base + path, data=data, headers={"Content-Type": media_type},
                                 timeout=30) for base in (served["base"], full_path["base"])]
        hot, full = answers
        assert hot.status_code == full.status_code, (path, body, hot.text, full.text)
        assert _without_ids(hot) == _without_ids(full), (path, body)
        assert hot.headers["x-request-id"] and full.headers["x-request-id"]
        assert hot.headers["content-type"] == full.headers["content-type"]
        assert hot.status_code < 500, (path, hot.text)


def test_the_full_path_writes_the_access_log_and_the_hot_path_does_not(served, full_path,
                                                                        penguins_bento):
    body = {"record": penguins_bento["record"]}
    requests.post(f"{full_path['base']}/predict", json=body, timeout=30).raise_for_status()
    deadline = time.monotonic() + 10
    while "path=/predict" not in full_path["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "path=/predict" in full_path["log"].read_text()
    requests.post(f"{served['base']}/predict", json=body, timeout=30).raise_for_status()
    assert "path=/predict" not in (Path(served["log"]).parent / "serve.log").read_text()


def _count(metrics: str, endpoint: str, code: str) -> float:
    """Requests to `endpoint` answered with a status starting with `code`."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("bentoml_service_request_total{")
               and f'endpoint="{endpoint}"' in line and f'http_response_code="{code}' in line)


@pytest.mark.parametrize("path", ["/predict", f"/v2/models/{MODEL}/infer", "/invocations"])
def test_bentoml_request_metrics_count_every_hot_request_once(served, penguins_bento, path):
    record = penguins_bento["record"]
    body = {"/predict": {"record": record}, "/invocations": {"dataframe_records": [record]}}.get(
        path, _requests(record)[8][2])
    before = requests.get(f"{served['base']}/metrics", timeout=30).text
    for _ in range(5):
        requests.post(served["base"] + path, json=body, timeout=30).raise_for_status()
    requests.post(served["base"] + path, data="{", timeout=30)  # one bad request: a 4xx
    after = requests.get(f"{served['base']}/metrics", timeout=30).text
    assert _count(after, path, "200") - _count(before, path, "200") == 5
    assert _count(after, path, "4") - _count(before, path, "4") == 1
