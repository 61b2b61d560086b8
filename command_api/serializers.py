"""Request bodies of the commands. Unknown fields, wrong types and oversize values are 400s."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from domain.lifecycle import Priority, Status
from domain.ticket import BODY_MAX, DESCRIPTION_MAX, SUBJECT_MAX, TAG_MAX, TAGS_MAX
from infra.api import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer


class AttachmentSerializer(StrictSerializer):
    name = StrictCharField(max_length=255)
    content_type = StrictCharField(max_length=127, required=False)
    size = StrictIntegerField(min_value=0, required=False)


class OpenTicketSerializer(StrictSerializer):
    subject = StrictCharField(max_length=SUBJECT_MAX)
    description = StrictCharField(max_length=DESCRIPTION_MAX, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=[p.value for p in Priority], default="medium")
    tags = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX), max_length=TAGS_MAX, default=list
    )
    language = StrictCharField(max_length=16, default="en")
    customer_id = StrictIntegerField(
        required=False, help_text="Staff only: open the ticket on behalf of this customer."
    )


class PostMessageSerializer(StrictSerializer):
    body = StrictCharField(max_length=BODY_MAX)
    internal = StrictBooleanField(default=False)
    attachments = AttachmentSerializer(many=True, required=False, default=list)
    draft_id = serializers.UUIDField(
        required=False,
        help_text="The AI draft this reply started from (yours, ready, not sent before): "
        "records `ReplySentFromDraft` with the edit distance. Public replies only.",
    )

    @classmethod
    def validated(cls, data: Any, **kwargs: Any) -> dict[str, Any]:
        """The common body (text, maybe ``internal``, no attachments) checked directly;
        anything else by the serializer, which also words every error. Building the
        serializer (DRF deep-copies its fields for each instance) and running its fields
        cost more than the rest of the view (ADR 0020); ``tests/unit/test_command_bodies.py``
        checks that both give the same result."""
        if not kwargs:
            plain = plain_message(data)
            if plain is not None:
                return plain
        return super().validated(data, **kwargs)


def plain_message(data: Any) -> dict[str, Any] | None:
    """What ``PostMessageSerializer`` makes of ``data`` if it is a valid message without
    attachments; None for anything else (then the serializer decides, and words the error)."""
    if type(data) is not dict or not data.keys() <= _MESSAGE_FIELDS:
        return None
    body = data.get("body")
    internal = data.get("internal", False)
    attachments = data.get("attachments", _NONE)
    if type(body) is not str or type(internal) is not bool:
        return None
    if attachments is not _NONE and attachments != []:
        return None
    text = body.strip()  # CharField's trim_whitespace
    # CharField's checks: not blank, no NUL, no surrogates, at most max_length characters.
    if not text or len(text) > BODY_MAX or "\x00" in text or _SURROGATE.search(text):
        return None
    return {"body": text, "internal": internal, "attachments": []}


# A reply from a draft (``draft_id``) is not plain: the serializer (and Django) decide it.
_MESSAGE_FIELDS = frozenset(PostMessageSerializer._declared_fields) - {"draft_id"}
_NONE = object()
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class ChangeStatusSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=[s.value for s in Status])
    reason = StrictCharField(max_length=500, allow_blank=True, default="")


class AssignSerializer(StrictSerializer):
    agent_id = StrictIntegerField(
        allow_null=True, help_text="User id of the agent; null removes the assigned agent."
    )
    reason = StrictCharField(max_length=500, allow_blank=True, default="")


class EditTicketSerializer(StrictSerializer):
    subject = StrictCharField(max_length=SUBJECT_MAX, required=False)
    description = StrictCharField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False)
    tags = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX), max_length=TAGS_MAX, required=False
    )
    priority = serializers.ChoiceField(choices=[p.value for p in Priority], required=False)

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        if not attrs:
            raise serializers.ValidationError("Send at least one field to change.")
        return attrs


class AvailabilitySerializer(StrictSerializer):
    availability = serializers.ChoiceField(choices=["online", "away", "offline"])


class CommandResultSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.UUIDField()
    version = serializers.IntegerField()
    position = serializers.IntegerField(allow_null=True)


# The event history (what command_api.presenters returns), for the schema.


class ActorSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    name = serializers.CharField(
        allow_null=True, help_text="The person's display name; null for the system."
    )


class HistoryEventSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    type = serializers.CharField(help_text="The event class, e.g. StatusChanged.")
    time = serializers.DateTimeField()
    actor = ActorSerializer()
    # DRF's metaclass takes declared fields off the class, so this never hides ``.data``.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="The event's own attributes (by type)."
    )


class HistorySerializer(serializers.Serializer[Any]):
    ticket_id = serializers.UUIDField()
    events = HistoryEventSerializer(many=True)


class MessageResultSerializer(CommandResultSerializer):
    message_id = serializers.UUIDField(help_text="The new message (upload its files to it).")
