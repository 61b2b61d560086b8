"""E2E fixtures: committed users the live server can see, without flushing the database.

E2E tests talk to a separate server process, so their users must be committed. Creating
them outside test transactions (``django_db_blocker.unblock``) avoids pytest-django's
flush-after-test, which would race the server's projectors for table locks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def e2e_user(django_db_setup: Any, django_db_blocker: Any) -> Callable[..., Any]:
    from infra.auth.models import User

    def make(role: str = "customer") -> User:
        with django_db_blocker.unblock():
            from tests.conftest import create_user

            return create_user(role)

    return make


@pytest.fixture
def e2e_token(django_db_setup: Any, django_db_blocker: Any) -> Callable[[Any], str]:
    from infra.auth.tokens import start_session

    def make(user: Any) -> str:
        with django_db_blocker.unblock():
            return start_session(user).access

    return make
