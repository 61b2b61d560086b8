"""One command followed through the logs: the correlation id a request gave its events is in
the projectors' log lines (``deskstream.projector`` at DEBUG) and in the e-mail task's, as
the JSON log formatter of ``config/settings.py`` renders them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tests.conftest import create_user, project_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every log record of the process, with the fields of ``config/settings.py``, rendered
    as ``DESKSTREAM_LOG_FORMAT=json`` renders them."""
    from config import settings as configured

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=configured._LOG_FIELDS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "deskstream.projector")}
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("deskstream.projector").setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def test_a_commands_correlation_id_reaches_the_projectors_and_the_email_task(
    json_lines: io.StringIO, settings: Any, tmp_path: Any
) -> None:
    from command_api.application import Actor, get_application
    from config import bootstrap
    from domain.lifecycle import Role
    from infra.observability import context

    settings.EMAIL_OUTBOX = True
    settings.EMAIL_OUTBOX_DIR = str(tmp_path / "outbox")
    settings.SMTP_HOST = ""
    customer = create_user("customer")
    agent = create_user("agent")
    app = get_application()
    opened = app.open_ticket(
        Actor(str(customer.pk), Role.CUSTOMER),
        customer_id=str(customer.pk),
        subject="Help",
        description="",
    )
    with context.bound(request="req-42", correlation="trace-42"):
        replied = app.post_message(opened.id, Actor(str(agent.pk), Role.AGENT), body="On it")
    project_all()

    logged = lines(json_lines)
    applied = [
        line
        for line in logged
        if line.get("event") == "event applied" and line.get("position") == replied.position
    ]
    assert {line["projector"] for line in applied} >= {"read_models", "notifications"}
    assert {line["correlation_id"] for line in applied} == {"trace-42"}
    assert {line["request_id"] for line in applied} == {"req-42"}
    # The event before it came from no request: no ids.
    assert all(
        line.get("correlation_id") is None
        for line in logged
        if line.get("event") == "event applied" and line.get("position") == opened.position
    )

    from infra.postgres.models import NotificationOutboxRecord

    # The projector's commit enqueues the e-mail after the test's transaction (never, here):
    # the task is run as the worker would run it.
    row = NotificationOutboxRecord.objects.get(position=replied.position)
    json_lines.truncate(0)
    json_lines.seek(0)
    assert bootstrap.send_notification_email(row.id) == "sent"
    [task_line] = [line for line in lines(json_lines) if line.get("outbox_id") == row.id]
    assert task_line["event"] == f"e-mail {row.id}: sent"
    assert task_line["correlation_id"] == "trace-42"
    assert task_line["request_id"] == "req-42"
