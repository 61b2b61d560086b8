"""Schemathesis against the live server's own schema (``/api/schema/``), for every role.

Every operation of the schema gets generated requests, valid ones and invalid ones, sent
over real HTTP to uvicorn serving ``config.asgi`` (the ``live_api`` server), as an anonymous
caller, a customer, an agent and an admin; operations on one ticket, agent or template run
twice, with generated path parameters and with ones that exist (the caller's ticket, the
caller, a template kind), so bodies reach the commands. It fails on:

- a 5xx;
- any answer the schema does not describe: an undocumented status code, another content
  type, a body or a header that does not match;
- a command refused with a 4xx that stored an event anyway (events that the server's own
  automation appends meanwhile, as the system actor, such as an assignment or an SLA breach,
  are not the request's).

Hypothesis runs derandomized (the same requests on every run) with a bounded number of
examples per operation, so the module takes about three minutes. Failures are collected
over all operations and reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain.lifecycle import Role
from tests.conftest import LiveServer

pytestmark = [
    pytest.mark.slow,
    # schemathesis's own strategies draw from ``random`` (its concern, not the API's)
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation, generation mode and set of path parameters. An anonymous caller is
# refused before any body is read, on all but a few operations: fewer of its requests say as
# much.
EXAMPLES = 6
ANONYMOUS_EXAMPLES = 3
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
ROLES = ["anonymous", "customer", "agent", "admin"]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _text(failure: BaseException) -> str:
    if isinstance(failure, BaseExceptionGroup):
        return "\n".join(_text(e) for e in failure.exceptions)
    return str(failure)


class Fuzz:
    def __init__(
        self,
        server: LiveServer,
        token: str | None,
        last_position: Callable[[], int],
        stored_since: Callable[[int], list[str]],
    ) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.last_position = last_position
        self.stored_since = stored_since
        self.failures: list[str] = []

    def operation(self, operation: Any, path_parameters: dict[str, str] | None) -> None:
        for mode in MODES:
            try:
                found = self.run(operation, mode, path_parameters)
            except Unsatisfiable:  # negative mode: the operation takes nothing to get wrong
                if mode is not schemathesis.GenerationMode.NEGATIVE:
                    raise
                found = []
            self.failures.extend(found[:3])  # the first few of each operation are enough

    def run(self, operation: Any, mode: Any, path_parameters: dict[str, str] | None) -> list[str]:
        found: list[str] = []
        label = f"{operation.label} [{mode.value}{', real ids' if path_parameters else ''}]"

        @settings(
            max_examples=EXAMPLES if self.headers else ANONYMOUS_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        def run(case: Any) -> None:
            write = case.method.upper() in WRITES
            before = self.last_position() if write else 0
            try:
                response = case.call(base_url=self.server.url, headers=self.headers, timeout=30)
                case.validate_response(response, checks=CHECKS, headers=self.headers)
            except (FailureGroup, Exception) as failure:  # or no answer at all
                found.append(f"{label}: {_text(failure)}")
                return
            if write and 400 <= response.status_code < 500:
                stored = self.stored_since(before)
                if stored:
                    found.append(
                        f"{label}: refused with {response.status_code} but stored "
                        f"{', '.join(stored)}: {case.as_curl_command()}"
                    )

        run()
        return found


@pytest.fixture
def last_position(django_db_blocker: Any) -> Callable[[], int]:
    """The newest position of the event store (what the server's commands append to)."""
    from command_api.application import get_application

    def read() -> int:
        with django_db_blocker.unblock():
            return get_application().recorder.max_notification_id() or 0

    return read


@pytest.fixture
def stored_since(django_db_blocker: Any) -> Callable[[int], list[str]]:
    """The topics of the events stored after a position, leaving out those the server's own
    automation (the system actor) appended meanwhile."""
    from command_api.application import get_application

    def read(position: int) -> list[str]:
        app = get_application()
        with django_db_blocker.unblock():
            notifications = app.recorder.select_notifications(
                start=position, limit=1000, inclusive_of_start=False
            )
        events = [app.mapper.to_domain_event(n) for n in notifications]
        return [
            type(event).__name__
            for event in events
            if getattr(event, "actor_role", None) != Role.SYSTEM.value
        ]

    return read


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_the_schema_says(
    live_api: LiveServer,
    e2e_user: Callable[[str], Any],
    e2e_token: Callable[[Any], str],
    last_position: Callable[[], int],
    stored_since: Callable[[int], list[str]],
    role: str,
) -> None:
    from infra.email import templates

    user = None if role == "anonymous" else e2e_user(role)
    token = None if user is None else e2e_token(user)
    owner = user if role == "customer" else e2e_user("customer")
    with live_api.client(e2e_token(owner)) as c:
        r = c.post("/api/tickets", json={"subject": "Fuzzed", "description": "by schemathesis"})
    assert r.status_code == 201, r.text
    real = {
        "ticket_id": r.json()["id"],
        "user_id": str(user.pk) if user is not None else "me",
        "kind": templates.KINDS[0],
    }
    fuzz = Fuzz(live_api, token, last_position, stored_since)
    # The schema is built on its first request: on a loaded machine that took over the
    # loader's default 10 s.
    schema = schemathesis.openapi.from_url(f"{live_api.url}/api/schema/", timeout=60)
    for result in schema.get_all_operations():
        operation = result.ok()
        fuzz.operation(operation, None)
        names = {p.name for p in operation.path_parameters}
        if names and names <= set(real):
            fuzz.operation(operation, {name: real[name] for name in names})
    failures = fuzz.failures
    assert not failures, f"{len(failures)} failure(s):\n\n" + "\n\n".join(failures)
