"""Shared DRF helpers: strict serializers and fields (a typo or wrong type is a 400), bounded
JSON bodies."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser


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
        return super().parse(io.BytesIO(raw), media_type, parser_context)
