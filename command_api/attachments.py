"""Attachments on the write side: upload (``POST /api/tickets/{id}/attachments``, multipart)
and download through a short-lived signed link (``GET /api/attachments/{id}?t=&u=&exp=&sig=``).

An upload is checked in full before anything is stored (size, type detected from the bytes,
counts, who may attach where: ``Ticket.upload_attachment`` on a copy of the ticket), then
sealed with a data key of its own (``infra.storage.envelope``), put in the blob store, and
recorded as ``AttachmentUploaded``; if that append fails, the blob is removed again. Then
the scan is enqueued: the file is offered to nobody until ``AttachmentScanned`` says clean.

The ports (blob store, envelope, limits, how a scan is enqueued) are built by the
composition root (``config.bootstrap.attachment_ports``), which hands its factory to
``provide`` when it is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api.application import Actor, get_application
from command_api.views import actor_of, ticket_uuid
from domain.attachment import AttachmentLimits, AttachmentTooLargeError
from domain.errors import NotFoundError
from domain.lifecycle import Role
from infra.auth.models import User
from infra.schema import ErrorSerializer
from infra.storage.content import detect_content_type
from infra.storage.envelope import Envelope
from infra.storage.links import LinkError, verify_link
from infra.storage.ports import BlobStore

log = logging.getLogger(__name__)

# Multipart framing around the file: a request longer than the limit plus this is refused
# from its Content-Length, before a byte of it is read.
MULTIPART_SLACK = 64 * 1024


@dataclass(frozen=True)
class AttachmentPorts:
    files: BlobStore
    envelope: Envelope
    limits: AttachmentLimits
    scan_later: Callable[[UUID, UUID], object]  # (ticket id, attachment id): enqueue its scan


_provider: Callable[[], AttachmentPorts] | None = None


def provide(factory: Callable[[], AttachmentPorts]) -> None:
    global _provider
    _provider = factory


def ports() -> AttachmentPorts:
    if _provider is None:
        raise ImproperlyConfigured("Attachments are wired by config.bootstrap; import it first.")
    return _provider()


def blob_key(ticket_id: UUID, attachment_id: UUID) -> str:
    return f"attachments/{ticket_id}/{attachment_id}"


def quarantine_key(ticket_id: UUID, attachment_id: UUID) -> str:
    return f"quarantine/{ticket_id}/{attachment_id}"


@dataclass(frozen=True)
class Uploaded:
    attachment_id: UUID
    version: int
    position: int | None
    content_type: str


def upload_file(
    actor: Actor,
    ticket_id: UUID,
    *,
    name: str,
    data: bytes,
    message_id: UUID | None = None,
    internal: bool = False,
) -> Uploaded:
    p = ports()
    app = get_application()
    attachment_id = uuid4()
    content_type = detect_content_type(data, name)
    fields: dict[str, Any] = {
        "attachment_id": attachment_id,
        "name": name,
        "content_type": content_type,
        "size": len(data),
        "message_id": message_id,
        "internal": internal,
        "limits": p.limits,
    }
    app.check_attachment(ticket_id, actor, **fields)
    key = blob_key(ticket_id, attachment_id)
    p.files.put(key, p.envelope.seal(str(attachment_id), data))
    try:
        res = app.upload_attachment(ticket_id, actor, **fields)
    except BaseException:
        p.files.delete(key)  # refused after all (a race with another upload): nothing stays
        raise
    try:
        p.scan_later(ticket_id, attachment_id)
    except Exception:  # the broker is away: `manage.py attachments rescan` enqueues it later
        log.warning("could not enqueue the scan of %s", attachment_id, exc_info=True)
    res = res.seen_by(actor.role)  # a customer's upload: their ticket's public version
    return Uploaded(attachment_id, res.version, res.position, content_type)


def read_file(ticket_id: UUID, attachment_id: UUID, user: User) -> tuple[bytes, str, str]:
    """The decrypted bytes, type and name of a file this user may read now (else a
    ``DomainError``: not found, still scanning, quarantined)."""
    ticket = get_application().get_ticket(ticket_id)
    attachment = ticket.attachment_for(
        attachment_id, actor_id=str(user.pk), actor_role=Role(user.role)
    )
    p = ports()
    blob = p.files.get(blob_key(ticket_id, attachment_id))
    return p.envelope.open(str(attachment_id), blob), attachment.content_type, attachment.name


# ------------------------------------------------------------------------------ HTTP
class UploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    message_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    internal = serializers.BooleanField(required=False, default=False)


class UploadResultSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The ticket.")
    version = serializers.IntegerField()
    position = serializers.IntegerField(allow_null=True)
    attachment_id = serializers.UUIDField()
    content_type = serializers.CharField(help_text="Detected from the content.")
    status = serializers.CharField(help_text='Always "scanning" here.')


def _error(description: str) -> OpenApiResponse:
    """An error answer: the API's error body (``infra.schema.ErrorSerializer``)."""
    return OpenApiResponse(ErrorSerializer, description=description)


ERRORS = {
    400: _error("Bad form, empty file or too many files"),
    403: OpenApiResponse(
        ErrorSerializer, description="Not allowed (customers attach no internal files)"
    ),
    404: _error("No such ticket or message"),
    409: _error("The ticket is closed"),
    413: _error("The file is bigger than the limit"),
    415: OpenApiResponse(
        ErrorSerializer, description="Files of this type (from the content) are refused"
    ),
}


class AttachmentUploadView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: UploadResultSerializer, **ERRORS},
        tags=["attachments"],
        description="Attach a file to the ticket, or with `message_id` to one of your own "
        "messages (then it is internal exactly when the message is). The file is offered "
        'to readers once the virus scan says clean; until then its status is "scanning".',
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        tid = ticket_uuid(ticket_id)
        limits = ports().limits
        length = request.META.get("CONTENT_LENGTH") or "0"
        if (
            length.isascii()
            and length.isdigit()
            and int(length) > limits.max_bytes + MULTIPART_SLACK
        ):
            raise AttachmentTooLargeError(
                f"At most {limits.max_bytes} bytes are accepted.",
                field="file",
                max_bytes=limits.max_bytes,
            )
        form = UploadSerializer(data=request.data)
        if not form.is_valid():
            raise ValidationError(form.errors)
        upload = form.validated_data["file"]
        if upload.size is not None and upload.size > limits.max_bytes:
            raise AttachmentTooLargeError(
                f"The file is {upload.size} bytes; at most {limits.max_bytes} bytes are accepted.",
                field="file",
                size=upload.size,
                max_bytes=limits.max_bytes,
            )
        done = upload_file(
            actor_of(request),
            tid,
            name=upload.name or "",
            data=upload.read(),
            message_id=form.validated_data["message_id"],
            internal=form.validated_data["internal"],
        )
        return Response(
            {
                "id": str(tid),
                "version": done.version,
                "position": done.position,
                "attachment_id": str(done.attachment_id),
                "content_type": done.content_type,
                "status": "scanning",
            },
            status=status.HTTP_201_CREATED,
            headers={"ETag": f'"{done.version}"'},
        )


LINK_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, required=True)
    for name in ("t", "u", "exp", "sig")
]


class AttachmentDownloadView(APIView):
    """The signed link is the credential (an ``<img src>`` sends no bearer token); the
    ticket is asked again whether the link's user may read the file now."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=LINK_PARAMETERS,
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            403: OpenApiResponse(
                ErrorSerializer, description="The link is tampered with or expired"
            ),
            404: _error("No such file for this user"),
            409: _error("Still being scanned"),
            410: OpenApiResponse(
                ErrorSerializer, description="Quarantined: the scanner found malware"
            ),
        },
        tags=["attachments"],
        auth=[],
    )
    def get(self, request: Request, attachment_id: str) -> HttpResponse | Response:
        try:
            claims = verify_link(
                settings.SECRET_KEY,
                attachment_id,
                {k: request.query_params[k] for k in request.query_params},
            )
        except LinkError as error:
            return Response({"error": "link_invalid", "detail": str(error)}, status=403)
        user = User.objects.filter(pk=_int(claims.user_id), is_active=True).first()
        if user is None:
            return Response({"error": "link_invalid", "detail": "The link's user is gone."}, 403)
        data, content_type, name = read_file(claims.ticket_id, claims.attachment_id, user)
        inline = content_type.startswith("image/")
        disposition = "inline" if inline else "attachment"
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(name)}"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


def _int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise NotFoundError("No such attachment.")
    return int(value)
