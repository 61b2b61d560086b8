"""docker-compose.yml, .env.example and the Dockerfile cannot run here (no Docker engine):
check every service, image, port, command and environment variable they name against the
code - the settings it reads, the management commands and projectors it has."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import get_commands

from cli.management.commands.projector import Command as ProjectorCommand
from config.bootstrap import KAFKA_PROJECTORS, PROJECTORS, STORES
from infra.postgres.connection import database_from_url
from infra.postgres.feed import KAFKA, LOG
from infra.server import launcher

ROOT = Path(__file__).resolve().parent.parent.parent
INFRA = {
    "postgres",
    "redis",
    "kafka",
    "opensearch",
    "clickhouse",
    "grafana",
    "prometheus",
    "clamav",
}
APP = {"migrate", "web", "worker", "beat", "relay"} | {
    "projector-" + name.replace("_", "-") for name in PROJECTORS
}
# What the infrastructure images read themselves (compose interpolates these from .env).
IMAGE_VARIABLES = {
    "POSTGRES_PASSWORD",
    "CLICKHOUSE_PASSWORD",
    "CLICKHOUSE_ANALYST_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
}
_READ = re.compile(
    r"""(?:os\.environ\.get|os\.environ\[|env_bool|os\.getenv|environ\.setdefault)\(?\s*"([A-Z0-9_]+)\""""
)


def variables_the_code_reads() -> set[str]:
    names: set[str] = set()
    for package in ("config", "infra", "command_api", "read_api", "projections", "domain"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(_READ.findall(path.read_text()))
    return names


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def test_every_part_of_the_stack_is_a_service(services):
    assert set(services) == INFRA | APP


def test_images_are_pinned_and_app_services_build_the_dockerfile(services):
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, name
        assert not image.endswith(":latest"), name
        if name in APP:
            assert service["build"] == "."
    assert (ROOT / "Dockerfile").exists()


def test_every_long_running_service_has_a_health_check(services):
    for name, service in services.items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        assert len(test) > 1, name


def test_dependencies_name_services_and_wait_for_health(services):
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            expected = (
                "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            )
            assert spec["condition"] == expected, (name, dependency)
        if name in APP - {"migrate"}:
            assert set(service["depends_on"]) == {
                "postgres", "redis", "kafka", "opensearch", "clickhouse", "migrate",
            }  # fmt: skip


def test_app_environment_is_read_by_the_code_and_defined(services):
    read = variables_the_code_reads()
    example = env_example()
    for name in APP:
        environment = services[name]["environment"]
        assert set(environment) <= read, (name, set(environment) - read)
        assert services[name]["env_file"] == ".env"
    assert set(example) <= read | IMAGE_VARIABLES, set(example) - read - IMAGE_VARIABLES
    # Every ${VAR} the file interpolates is in .env.example.
    text = (ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)) <= set(example)
    dockerfile = (ROOT / "Dockerfile").read_text()
    for var in re.findall(r"\b(DESKSTREAM_[A-Z0-9_]+)=", dockerfile):
        assert var in read, var


def test_urls_point_at_the_services_and_their_ports(services):
    env = services["web"]["environment"]
    db = database_from_url(env["DATABASE_URL"].replace("${POSTGRES_PASSWORD}", "pw"))
    assert (db["HOST"], str(db["PORT"]), db["NAME"]) == ("postgres", "5432", "deskstream")
    assert db["USER"] == services["postgres"]["environment"]["POSTGRES_USER"]
    assert db["NAME"] == services["postgres"]["environment"]["POSTGRES_DB"]
    redis = urlsplit(env["DESKSTREAM_REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    kafka_env = services["kafka"]["environment"]
    assert f"PLAINTEXT://{env['DESKSTREAM_KAFKA_BOOTSTRAP']}" in kafka_env[
        "KAFKA_ADVERTISED_LISTENERS"
    ].split(",")
    assert env["DESKSTREAM_PROJECTORS_IN_PROCESS"] == "0"  # projectors are their own services


def test_published_ports_are_the_servers_ports(services):
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {
        "web": ["127.0.0.1:8000:8000"],
        "grafana": ["127.0.0.1:3000:3000"],
        "prometheus": ["127.0.0.1:9090:9090"],
    }
    cmd = command(services["web"])
    assert cmd[cmd.index("--port") + 1] == "8000"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside its container


def test_commands_exist_and_cover_every_projector(services):
    commands = get_commands()
    projectors: dict[str, str] = {}
    for name in APP:
        cmd = command(services[name])
        if cmd[:2] == ["python", "manage.py"]:
            assert cmd[2] in commands, name
        if cmd[2:4] == ["projector", "run"]:
            projector = cmd[4]
            assert projector in PROJECTORS
            assert name == "projector-" + projector.replace("_", "-")
            source = cmd[cmd.index("--source") + 1] if "--source" in cmd else "log"
            projectors[projector] = source
    assert set(projectors) == set(PROJECTORS)
    # search consumes Kafka too when it is on OpenSearch (ADR 0028)
    on_opensearch = services["web"]["environment"].get("DESKSTREAM_SEARCH_BACKEND") == "opensearch"
    kafka = set(KAFKA_PROJECTORS) | ({"search"} if on_opensearch else set())
    assert {p for p, s in projectors.items() if s == "kafka"} == kafka
    assert command(services["worker"])[:4] == ["celery", "-A", "config.celery", "worker"]
    assert command(services["beat"])[:4] == ["celery", "-A", "config.celery", "beat"]
    assert command(services["relay"]) == ["python", "manage.py", "relay"]


def test_the_image_carries_every_package(services):
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "command_api", "projections", "read_api", "infra", "config"):
        assert f"COPY {package} {package}" in dockerfile
    assert "FROM python:3.11" in dockerfile  # the version pyproject and ADR 0002 pin


def feeds(cmd: list[str], environment: dict[str, str], monkeypatch: Any) -> set[tuple[str, str]]:
    """The (projection, source) pairs a command line feeds, read with the launcher's and the
    projector command's own argument parsers (and the environment the launcher reads)."""
    if cmd[:3] == ["python", "-m", "infra.server.launcher"]:
        if "DESKSTREAM_PROJECTORS_MODE" in environment:
            monkeypatch.setenv(
                "DESKSTREAM_PROJECTORS_MODE", environment["DESKSTREAM_PROJECTORS_MODE"]
            )
        else:
            monkeypatch.delenv("DESKSTREAM_PROJECTORS_MODE", raising=False)
        mode = launcher.parse_args(cmd[3:]).projectors
        return set() if mode == "none" else {(name, LOG) for name in STORES}
    if cmd[:3] == ["python", "manage.py", "projector"]:
        args = ProjectorCommand().create_parser("manage.py", "projector").parse_args(cmd[3:])
        if args.action == "run":
            return {(args.name, args.source)}
        if args.action == "run-all":
            return {(name, LOG) for name in STORES}
    return set()


def test_feeds_reads_what_each_command_line_feeds(monkeypatch):
    web = ["python", "-m", "infra.server.launcher", "--no-demo"]
    assert feeds(web, {}, monkeypatch) == {(name, LOG) for name in STORES}  # run-all beside it
    assert feeds(web, {"DESKSTREAM_PROJECTORS_MODE": "none"}, monkeypatch) == set()
    assert feeds([*web, "--projectors", "threads"], {}, monkeypatch) == {
        (name, LOG) for name in STORES
    }
    run = ["python", "manage.py", "projector", "run", "sla"]
    assert feeds(run, {}, monkeypatch) == {("sla", LOG)}
    assert feeds([*run, "--source", "kafka"], {}, monkeypatch) == {("sla", KAFKA)}


def test_every_projection_is_fed_from_one_source_and_the_web_server_feeds_none(
    services, monkeypatch
):
    """Two writers to one projection (from the log and from Kafka) are refused at start-up
    (infra/postgres/feed.py); the compose file must not ask for them."""
    fed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name in sorted(APP):
        service = services[name]
        for projection, source in feeds(command(service), service["environment"], monkeypatch):
            fed[projection][source].append(name)
    assert set(fed) == set(PROJECTORS)
    for projection, by_source in fed.items():
        assert len(by_source) == 1, (projection, dict(by_source))
        assert sum(len(s) for s in by_source.values()) == 1, (projection, dict(by_source))
    web = services["web"]
    assert feeds(command(web), web["environment"], monkeypatch) == set()
    on_opensearch = web["environment"].get("DESKSTREAM_SEARCH_BACKEND") == "opensearch"
    kafka = set(KAFKA_PROJECTORS) | ({"search"} if on_opensearch else set())
    assert {p for p, by_source in fed.items() if KAFKA in by_source} == kafka


def test_beat_schedules_what_the_projector_process_would_run_in_threads(services, monkeypatch):
    """No compose service runs ``run-all`` (whose threads sweep the outbox and check SLAs):
    beat schedules both for the worker."""
    from config.celery import CHECK_SLA, SWEEP, app

    assert not any(command(services[name])[2:4] == ["projector", "run-all"] for name in APP)
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} >= {CHECK_SLA, SWEEP}
    assert "beat" in services
