"""The admin API's document of the rate limits (for the schema)."""

from __future__ import annotations

from rest_framework import serializers


class ScopeLimitSerializer(serializers.Serializer[dict[str, int]]):
    per_user = serializers.IntegerField(min_value=0)
    per_ip = serializers.IntegerField(min_value=0)
    window_seconds = serializers.IntegerField(min_value=1)


class RateLimitsSerializer(serializers.Serializer[dict[str, dict[str, int]]]):
    sign_in = ScopeLimitSerializer()
    refresh = ScopeLimitSerializer()
    ticket_creation = ScopeLimitSerializer()
    messages = ScopeLimitSerializer()
    search = ScopeLimitSerializer()
