"""Cursor pagination that refuses what it cannot read: a 400 naming ``page_size`` or
``cursor``, never a silent default and never a 500.

DRF's ``CursorPagination`` falls back to the default page size for ``?page_size=abc`` and
passes the cursor's position to the database unchecked: a tampered cursor (``cD0x``, that is
``p=1`` for a list ordered by time) became a query PostgreSQL refused.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qs

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, Model, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from domain.numbers import parse_natural
from infra.api import in_utc

INVALID_CURSOR = "Invalid cursor: use the next or previous link of a page as it is."


class StrictCursorPagination(CursorPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    _model: type[Model] | None = None

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param or "page_size", "")
        if raw == "":
            return int(self.page_size or 1)
        size = parse_natural(raw)
        if size is None or not 1 <= size <= int(self.max_page_size or size):
            raise ValidationError({"page_size": [f"An integer from 1 to {self.max_page_size}."]})
        return size

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None or encoded == "":
            return None
        try:
            text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
        except (UnicodeError, binascii.Error, ValueError):
            raise _invalid() from None
        if set(tokens) - {"o", "r", "p"} or any(len(v) != 1 for v in tokens.values()):
            raise _invalid()
        offset = parse_natural(tokens.get("o", ["0"])[0])
        reverse = tokens.get("r", ["0"])[0]
        if offset is None or offset > self.offset_cutoff or reverse not in ("0", "1"):
            raise _invalid()
        position = tokens.get("p", [None])[0]
        if position is not None:
            position = self._checked_position(position)
        # (DRF's stubs type the position as an int; it is the text of the ordering value.)
        return Cursor(offset=offset, reverse=reverse == "1", position=cast(Any, position))

    def _checked_position(self, position: str) -> str:
        """The position as the ordering field reads it (a time in UTC, a natural number)."""
        name = self.ordering[0].lstrip("-") if self.ordering else ""
        try:
            field = self._model._meta.get_field(name) if self._model else None
        except FieldDoesNotExist:
            field = None
        if not isinstance(field, Field):
            raise _invalid()
        try:
            value = field.to_python(position)
        except DjangoValidationError:
            raise _invalid() from None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise _invalid()
            try:
                return in_utc(value).isoformat()
            except ValueError:
                raise _invalid() from None
        if isinstance(value, int) and parse_natural(position) is None:
            raise _invalid()
        if isinstance(value, str) and "\x00" in value:
            raise _invalid()
        return position


def _invalid() -> ValidationError:
    return ValidationError({"cursor": [INVALID_CURSOR]})
