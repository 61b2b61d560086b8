"""How a staff account (agent or admin) is shown by the admin console: one serializer and one
presenter for the answers of the invitation and role commands (``command_api``) and the rows
of the agents list (``read_api``), so both say the same thing about a user."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from infra.auth.models import User


class StaffUserSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField()
    role = serializers.CharField()
    is_active = serializers.BooleanField()
    invited_at = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)


def present_user(user: User) -> dict[str, Any]:
    return {
        "id": str(user.pk),
        "email": user.email,
        "name": user.display_name,
        "role": user.role,
        "is_active": user.is_active,
        "invited_at": user.invited_at,
        "last_seen": user.last_seen,
    }
