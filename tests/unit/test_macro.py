"""The Macro aggregate and the placeholders (ADR 0046)."""

from __future__ import annotations

import pytest

from domain.errors import IllegalTransitionError, PermissionDeniedError, ValidationError
from domain.lifecycle import Role
from domain.macro import Macro
from domain.placeholders import fill_placeholders, unknown_placeholders

CONTENT = {"name": "Thanks", "body": "Hi {{customer.name}}", "status": None, "add_tags": [],
           "assign_to": None}  # fmt: skip


def test_who_keeps_which_macro() -> None:
    with pytest.raises(PermissionDeniedError):
        Macro.create(shared=True, actor_id="2", actor_role=Role.AGENT, **CONTENT)
    with pytest.raises(PermissionDeniedError):
        Macro.create(shared=False, actor_id="9", actor_role=Role.CUSTOMER, **CONTENT)
    shared = Macro.create(shared=True, actor_id="1", actor_role=Role.ADMIN, **CONTENT)
    own = Macro.create(shared=False, actor_id="2", actor_role=Role.AGENT, **CONTENT)
    assert shared.may_see("2", Role.AGENT)
    assert own.may_see("2", Role.AGENT)
    assert not own.may_see("3", Role.AGENT)
    assert not own.may_see("1", Role.ADMIN)
    with pytest.raises(PermissionDeniedError):
        shared.change(actor_id="2", actor_role=Role.AGENT, **CONTENT)
    with pytest.raises(PermissionDeniedError):
        own.delete(actor_id="1", actor_role=Role.ADMIN)
    shared.change(actor_id="7", actor_role=Role.ADMIN, **{**CONTENT, "name": "Thank you"})
    assert shared.content["name"] == "Thank you"
    assert shared.version == 2
    own.change(actor_id="2", actor_role=Role.AGENT, **CONTENT)  # nothing changed: no event
    assert own.version == 1
    own.delete(actor_id="2", actor_role=Role.AGENT)
    with pytest.raises(IllegalTransitionError):
        own.change(actor_id="2", actor_role=Role.AGENT, **CONTENT)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"body": "{{ticket.secret}}"}, "body"),
        ({"body": "x" * 5001}, "body"),
        ({"status": "gone"}, "status"),
        ({"add_tags": ["a"] * 21}, "add_tags"),
        ({"assign_to": "-1"}, "assign_to"),
        ({"assign_to": "\u0663"}, "assign_to"),  # an Arabic-Indic three
    ],
)
def test_bad_content_names_its_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Macro.create(shared=False, actor_id="2", actor_role=Role.AGENT, **{**CONTENT, **change})
    assert refused.value.data["field"] == field


def test_placeholders() -> None:
    text = "Hi {{ customer.name }}, re {{ticket.subject}} {{agent.name}} {{other.thing}}"
    assert unknown_placeholders(text) == ["other.thing"]
    filled = fill_placeholders(text, {"customer.name": "Grace", "ticket.subject": "Toner"})
    assert filled == "Hi Grace, re Toner  {{other.thing}}"
