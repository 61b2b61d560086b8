"""Request bodies of the commands. Unknown fields, wrong types and oversize values are 400s."""

from __future__ import annotations

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
