"""The OpenAPI schema's account of errors: every operation documents the 4xx answers it
can give, each with the one error body of the API (``command_api/errors.py``)::

    {"error": "invalid", "detail": "page_size: An integer from 1 to 100.",
     "fields": {"page_size": ["An integer from 1 to 100."]}}

``ApiAutoSchema`` is drf-spectacular's ``AutoSchema`` (``DEFAULT_SCHEMA_CLASS``) with those
answers added to what each view declares. Which ones an operation gets follows from the
view: any request can be malformed (400); signed-in views refuse a missing or expired token
(401) and a role that may not (403); the public ones (sign-in, refresh) refuse credentials
(401); a path with a parameter may name nothing (404); a command may meet a concurrent
change (409); a body that is not JSON is refused (415). A view may list its own in
``error_statuses``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS = {
    400: "Invalid input: `fields` names each refused parameter or body field.",
    401: "Not signed in, or the token is invalid or expired (`error` says which).",
    403: "Signed in, but this role may not do this.",
    404: "No such resource (or one the caller may not see).",
    409: "A conflict: a concurrent change, a stale version, an illegal transition.",
    415: "The body is not JSON.",
    429: "Too many requests: try again after `Retry-After` seconds.",
    503: "A service this answer needs (search, analytics) is unreachable: try again later.",
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """The body of every error answer."""

    error = serializers.CharField(help_text="A stable code, e.g. `invalid`, `not_found`.")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    # A declared field named like ``Serializer.fields``: the metaclass moves it into
    # ``_declared_fields``, so the property stays as it is.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        required=False,
        help_text="For `invalid`: each refused field or parameter with its messages.",
    )

    class Meta:
        ref_name = "Error"


class ApiAutoSchema(AutoSchema):
    def error_statuses(self) -> list[int]:
        declared: list[int] | None = getattr(self.view, "error_statuses", None)
        if declared is not None:
            return declared
        public = any(p is AllowAny for p in getattr(self.view, "permission_classes", []))
        codes = [400, 401] if public else [400, 401, 403]
        if "{" in self.path:
            codes.append(404)
        if self.method in WRITES and not public:
            codes.append(409)
        if self.method in WRITES:
            codes.append(415)
        if getattr(self.view, "throttle_classes", None):  # rate-limited (infra/ratelimit)
            codes.append(429)
        return codes

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in self.error_statuses():
            if str(code) not in responses:
                body = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    ErrorSerializer, str(code), direction=direction
                )
                body["description"] = ERROR_DESCRIPTIONS[code]
                responses[str(code)] = body
        return responses
