"""The one place where errors become HTTP: ``{"error": code, "detail": message, ...}``.

Domain errors map to 4xx by kind; DRF's own errors (bad JSON, unknown fields, wrong types,
authentication) are reshaped to the same body. Nothing here swallows a real bug: anything
unexpected still surfaces as a 500 and is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import Http404, JsonResponse
from eventsourcing.persistence import IntegrityError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from domain import attachment
from domain import errors as domain
from infra.unavailable import RETRY_AFTER_SECONDS, database_unavailable

log = logging.getLogger(__name__)

_DOMAIN_STATUS: list[tuple[type[domain.DomainError], int]] = [
    (domain.ForeignTicketError, status.HTTP_404_NOT_FOUND),
    (domain.NotFoundError, status.HTTP_404_NOT_FOUND),
    (domain.PermissionDeniedError, status.HTTP_403_FORBIDDEN),
    (domain.StaleReplyError, status.HTTP_409_CONFLICT),
    (domain.IllegalTransitionError, status.HTTP_409_CONFLICT),
    (domain.VersionConflictError, status.HTTP_409_CONFLICT),
    (attachment.AttachmentTooLargeError, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (attachment.AttachmentTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (attachment.AttachmentScanningError, status.HTTP_409_CONFLICT),
    (attachment.AttachmentQuarantinedError, status.HTTP_410_GONE),
    (domain.ValidationError, status.HTTP_400_BAD_REQUEST),
    (domain.DomainError, status.HTTP_400_BAD_REQUEST),
]


def domain_error_response(exc: domain.DomainError) -> Response:
    code = next(s for cls, s in _DOMAIN_STATUS if isinstance(exc, cls))
    data = dict(exc.data)
    body: dict[str, Any] = {"error": exc.code, "detail": exc.detail}
    field = data.pop("field", None)
    if field is not None:  # the same shape as serializer errors: {"fields": {name: [msg]}}
        body["fields"] = {field: [exc.detail]}
    body.update(data)
    return Response(body, status=code)


# DRF's names for what the domain calls otherwise: one vocabulary for clients.
_SAME_AS_DOMAIN = {"permission_denied": "forbidden", "not_found": "not_found"}


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


DATABASE_UNAVAILABLE_BODY = {
    "error": "database_unavailable",
    "detail": "The database cannot be reached for a moment; try again after Retry-After "
    "seconds. A command may have been stored if the connection failed while it was "
    "committed: send If-Match with the version you saw, and a retry cannot apply it twice.",
}


def database_unavailable_response() -> Response:
    return Response(
        DATABASE_UNAVAILABLE_BODY,
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, domain.DomainError):
        return domain_error_response(exc)
    if database_unavailable(exc):
        log.warning("database unavailable: %s", exc, exc_info=True)
        return database_unavailable_response()
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"error": "body_too_large", "detail": "The request body is too large."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IntegrityError):
        return Response(
            {"error": "conflict", "detail": "The ticket is busy; retry the command."},
            status=status.HTTP_409_CONFLICT,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "error": "invalid",
            "detail": _flatten(exc.detail),
            "fields": exc.detail if isinstance(exc.detail, dict) else {},
        }
    elif isinstance(exc, exceptions.APIException):
        code = getattr(exc, "error_code", None) or (
            exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        )
        code = _SAME_AS_DOMAIN.get(str(code), str(code))
        response.data = {"error": code, "detail": _flatten(exc.detail)}
    elif isinstance(exc, Http404):
        response.data = {"error": "not_found", "detail": "Not found."}
    return response


def json_not_found(request: Any, exception: Exception | None = None) -> JsonResponse:
    """``handler404``: unknown URLs answer JSON like every other error."""
    return JsonResponse({"error": "not_found", "detail": "No such endpoint."}, status=404)


def json_bad_request(request: Any, exception: Exception | None = None) -> JsonResponse:
    """``handler400``: what Django refuses before any view runs (a Host not in
    ``DESKSTREAM_ALLOWED_HOSTS``, another suspicious request) answers JSON too."""
    if isinstance(exception, DisallowedHost):
        body = {"error": "bad_host", "detail": "This server does not answer for that Host."}
    else:
        body = {"error": "bad_request", "detail": "The request is malformed."}
    return JsonResponse(body, status=400)


# The body of every 500 (Django's ``handler500`` and the message lane's).
SERVER_ERROR = {"error": "server_error", "detail": "Something went wrong on our side."}


def json_server_error(request: Any) -> JsonResponse:
    """``handler500``: a bug is still a 500, but the body is JSON, never an HTML page."""
    return JsonResponse(SERVER_ERROR, status=500)
