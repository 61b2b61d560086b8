"""Operations against the session's live server (``live_api``, uvicorn on ``config.asgi``):
request and correlation ids on every answer and in the events a command appends, the
Prometheus metrics, the probes, the Grafana dashboard's metrics, and Sentry's scrubbing
(through the real SDK to a fake ingest server on 127.0.0.1), and a real Prometheus server
(Debian's, unpacked by ``make prometheus``) scraping it with the compose stack's
``deploy/prometheus/prometheus.yml``."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from tests.conftest import LiveServer, free_port, project_all

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "deskstream-operations.json"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_UNPACKED = ROOT / "var" / "prometheus" / "usr" / "bin"  # make prometheus


def test_ids_on_answers_and_in_the_events_metadata(
    live_api: LiveServer, e2e_user: Any, e2e_token: Any
) -> None:
    from command_api.application import get_application
    from config import bootstrap

    customer = e2e_user("customer")
    with live_api.client(e2e_token(customer)) as http:
        opened = http.post(
            "/api/tickets",
            json={"subject": "Printer on fire"},
            headers={"X-Correlation-ID": "case-4711"},
        )
        assert opened.status_code == 201, opened.text
        assert opened.headers["X-Correlation-ID"] == "case-4711"
        request_id = opened.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        # The message lane (on the event loop, not Django) stamps its events the same way.
        tid = opened.json()["id"]
        posted = http.post(
            f"/api/tickets/{tid}/messages",
            json={"body": "Still burning"},
            headers={"X-Correlation-ID": "case-4711"},
        )
        assert posted.status_code == 201, posted.text
        # No id asked for: the request id is the correlation id; a bad one is not echoed.
        plain = http.get("/api/auth/me", headers={"X-Correlation-ID": "not;an;id" * 10})
        assert plain.headers["X-Correlation-ID"] == plain.headers["X-Request-ID"]
        assert plain.headers["X-Request-ID"] != request_id

    app = get_application()
    events = app.ticket_events(UUID(tid))
    # The domain events are what they were: no metadata attribute on them.
    assert all("_metadata" not in vars(e) for e in events)
    first = bootstrap.event_metadata_at(opened.json()["position"])
    assert first == {"correlation_id": "case-4711", "request_id": request_id}
    second = bootstrap.event_metadata_at(posted.json()["position"])
    assert second["correlation_id"] == "case-4711"
    assert second["request_id"] == posted.headers["X-Request-ID"]
    # Projectors get it beside the event, in the envelope.
    [envelope] = bootstrap.event_source().read(opened.json()["position"] - 1, 1)
    assert envelope.metadata["correlation_id"] == "case-4711"
    assert type(envelope.event).__name__ == "Opened" or envelope.event.originator_id == UUID(tid)


def test_metrics_probes_and_the_dashboard(
    live_api: LiveServer, e2e_user: Any, e2e_token: Any
) -> None:
    agent = e2e_user("agent")
    with live_api.client(e2e_token(agent)) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["database"] == "ok"
        assert body["lagging"] == []
        assert "read_models" in body["projectors"]
        assert http.post("/api/agents/me/availability", json={"availability": "online"})
        # The live server has no metrics token: loopback clients may scrape.
        text = http.get("/metrics").text
    samples = exported(text)
    assert samples["deskstream_http_requests_total"] > 0
    assert samples["deskstream_commands_total"] > 0
    assert samples["deskstream_events_appended_total"] > 0
    assert "deskstream_projector_lag_events" in samples
    assert "deskstream_email_outbox_depth" in samples
    assert 'route="api/agents/me/availability"' in text
    # Every metric the operations dashboard queries is exported.
    named = dashboard_metrics()
    assert named, "the dashboard names metrics"
    declared = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    known = declared | set(samples) | {re.sub(r"_(bucket|sum|count)$", "", n) for n in samples}
    assert named - known == set()


def prometheus_binary(name: str) -> str | None:
    unpacked = PROMETHEUS_UNPACKED / name
    return str(unpacked) if unpacked.exists() else shutil.which(name)


def test_prometheus_scrapes_metrics_with_the_compose_config(
    live_api: LiveServer, tmp_path: Path
) -> None:
    """The compose stack's scrape configuration, with only what names the compose network
    changed (the target, the token file's path) and a short interval, accepted by promtool
    and run by a real Prometheus against the live server: the target is up and every
    Deskstream series the server exports is in Prometheus."""
    prometheus, promtool = prometheus_binary("prometheus"), prometheus_binary("promtool")
    if prometheus is None or promtool is None:
        pytest.skip("no Prometheus server: make prometheus (Debian's package, unpacked)")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    [job] = config["scrape_configs"]
    (tmp_path / "metrics-token").write_text("unused-here")  # the live server has no token
    job["authorization"]["credentials_file"] = str(tmp_path / "metrics-token")
    job["static_configs"] = [{"targets": [live_api.url.removeprefix("http://")]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    checked = subprocess.run([promtool, "check", "config", str(path)], capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()

    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [prometheus, f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"
    # What the server exports now (loopback, no token): each of these series reaches Prometheus.
    served = {n for n in exported(httpx.get(f"{live_api.url}/metrics").text) if "deskstream" in n}
    assert served
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
                names = set(httpx.get(f"{api}/label/__name__/values", timeout=2).json()["data"])
            except (httpx.HTTPError, KeyError, ValueError):
                targets, names = [], set()
            up = [t for t in targets if t["labels"]["job"] == "deskstream-web"]
            if up and up[0]["health"] == "up" and served <= names:
                break
            assert time.monotonic() < deadline, (up, served - names)
            time.sleep(0.5)
        value = httpx.get(f"{api}/query", params={"query": 'up{job="deskstream-web"}'}).json()
        assert [r["value"][1] for r in value["data"]["result"]] == ["1"]
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def exported(text: str) -> dict[str, float]:
    """Metric name (without labels) -> the sum of its samples."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def dashboard_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    return {m for e in exprs for m in re.findall(r"\b(deskstream_[a-z_]+)", e)}


def test_readyz_names_the_lagging_projector(settings: Any, db: Any) -> None:
    """Below the bound every projector is ready; with a bound of -1 every one is behind."""
    from django.test import Client

    project_all()
    settings.READY_MAX_LAG = 1_000_000
    assert Client().get("/readyz").status_code == 200
    settings.READY_MAX_LAG = -1
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    assert "read_models" in answer.json()["lagging"]
    assert answer.json()["status"] == "not ready"


def test_metrics_only_with_the_token_or_from_loopback(settings: Any, db: Any) -> None:
    from django.test import Client

    settings.METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    far = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert far.status_code == 403
    assert far.json()["error"] == "forbidden"
    settings.METRICS_TOKEN = "s3cret-token"
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    with_token = Client(REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert with_token.get("/metrics").status_code == 200
    wrong = Client(HTTP_AUTHORIZATION="Bearer s3cret-tokem")
    assert wrong.get("/metrics").status_code == 403


def test_readiness_names_projectors_behind_and_unreadable() -> None:
    from infra.observability.health import readiness

    def down() -> int:
        raise ConnectionError("search server down")

    def database() -> None:
        pass

    state = readiness(database, lambda: 100, {"a": lambda: 100, "b": lambda: 10, "c": down}, 50)
    assert not state.ready
    assert state.lagging == ["b"]
    assert state.unavailable == ["c"]
    assert state.as_dict()["projectors"]["b"] == {"position": 10, "lag": 90}
    assert readiness(database, lambda: 100, {"a": lambda: 60}, 50).ready

    def no_database() -> None:
        raise ConnectionError("refused")

    assert readiness(no_database, lambda: 1, {}, 50).as_dict()["database"] == "unreachable"


class _Ingest(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        type(self).received.append(data)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[tuple[str, list[bytes]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    _Ingest.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://public@127.0.0.1:{server.server_port}/1", _Ingest.received
    server.shutdown()
    server.server_close()


def test_sentry_reports_leave_personal_data_out(ingest: tuple[str, list[bytes]]) -> None:
    import sentry_sdk

    from infra.observability import context, errors

    dsn, received = ingest
    errors.init(dsn, environment="test")
    try:
        with context.bound(request="r-1", correlation="c-1"):
            try:
                raise ValueError(
                    "no ticket for jane.doe@example.com, token Bearer eyJhbGciOi.eyJzdWIi.c2ln"
                )
            except ValueError as error:
                sentry_sdk.capture_exception(error)
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=2)
        # No DSN: off again (and, like ours, without integrations that patch Django).
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)
    sent = b"".join(received)
    assert b"ValueError" in sent
    assert b"jane.doe@example.com" not in sent
    assert b"eyJhbGciOi" not in sent
    assert b"[scrubbed]" in sent
    assert b'"correlation_id":"c-1"' in sent.replace(b" ", b"")
