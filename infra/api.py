"""Shared DRF helpers: strict serializers and fields (a typo or wrong type is a 400), bounded
JSON bodies (in size and in nesting)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from rest_framework import exceptions, serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# Arrays and objects nested deeper than this are refused (a 400). No body of the API needs
# more than four levels; a body nested 50,000 levels deep made the standard library's
# decoder raise RecursionError, which is no ValueError and became a 500.
MAX_JSON_DEPTH = 32


class StrictSerializer(serializers.Serializer[dict[str, Any]]):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}, code="invalid"
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in unknown}, code="unknown_field"
            )
        return super().to_internal_value(data)

    @classmethod
    def validated(cls, data: Any, **kwargs: Any) -> dict[str, Any]:
        serializer = cls(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        result: dict[str, Any] = serializer.validated_data
        return result


class StrictCharField(serializers.CharField):
    """A string, and only a string: ``123`` or ``true`` for a text field is a type error."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, not ``"5"``, ``5.0`` or ``true``."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true``/``false``, not ``"yes"`` or ``1``."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class UtcDateTimeField(serializers.DateTimeField):
    """An ISO-8601 time with its offset, read as UTC (``in_utc``)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        try:
            value = in_utc(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None
        return super().enforce_timezone(value)


class BodyTooLarge(exceptions.APIException):
    status_code = 400
    default_detail = "The request body is too large."
    default_code = "body_too_large"


class BoundedJSONParser(JSONParser):
    """JSON bodies up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes.

    DRF reads the request stream itself, bypassing Django's own size check, so the limit is
    enforced here, on the bytes actually read. (A body without Content-Length, i.e. chunked,
    never reaches a parser: DRF treats it as empty, which the serializers then refuse.)
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:  # what JSONParser.parse does, through parse_json
            return parse_json(raw.decode(encoding), strict=self.strict)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def parse_json(text: str, *, strict: bool = True) -> Any:
    """``text`` as JSON, as DRF's ``JSONParser`` reads it (``strict``: no NaN or Infinity),
    nested at most ``MAX_JSON_DEPTH`` levels; anything else raises ``ValueError``. The one
    reading of a JSON body, for Django's path and the message lane alike."""
    try:
        data = json.loads(text, parse_constant=strict_constant if strict else None)
    except RecursionError:  # nested far deeper than the limit
        raise ValueError(_too_deep()) from None
    level: list[Any] = [data]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return data
    if any(isinstance(value, dict | list) for value in level):
        raise ValueError(_too_deep())
    return data


# A yes/no in a query string: ``?unread=true``, ``?sla_breached=0``.
QUERY_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def query_boolean(text: str) -> bool:
    """``true``/``1`` or ``false``/``0`` (any case); ``ValueError`` for anything else."""
    try:
        return QUERY_BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError("Give true or false.") from None


# PostgreSQL reads UTC offsets below 16 hours only ("time zone displacement out of range"
# for -16:00, a 500 found by fuzzing), while Python reads any below 24.
MAX_UTC_OFFSET = timedelta(hours=16)
OFFSET_TOO_LARGE = "UTC offsets go from -15:59 to +15:59."
OUT_OF_RANGE = "The time is out of range once in UTC."


def in_utc(value: datetime) -> datetime:
    """An aware time as UTC (naive ones are returned as they are), as every query sends it to
    PostgreSQL. ``ValueError`` for an offset of 16 hours or more, or a time that leaves the
    calendar in UTC (``0001-01-01T00:00+01:00``)."""
    offset = value.utcoffset()
    if offset is None:
        return value
    if abs(offset) >= MAX_UTC_OFFSET:
        raise ValueError(OFFSET_TOO_LARGE)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None


def _too_deep() -> str:
    return f"Arrays and objects nested more than {MAX_JSON_DEPTH} levels deep"
