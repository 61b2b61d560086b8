"""AI draft replies on the write side: ask for one (``POST /api/tickets/{id}/drafts``, staff
only), read one back (``GET /api/tickets/{id}/drafts/{draft_id}``, its agent or an admin),
and the admin's draft settings (``GET``/``PUT /api/settings/drafts``).

Asking records ``DraftRequested`` and enqueues the generation (a Celery task: eager under
``make run``, a worker otherwise); the text streams to the agent over the WebSocket
(stream ``drafts``) and is recorded as ``DraftGenerated``. A draft is never a message.
The draft is read from the ticket's events, as the history is, since the read models never
hold drafts. Limits: per agent and for everyone (``DraftThrottle``, 429 with ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from command_api.admin_audit import record
from command_api.application import get_application
from command_api.views import actor_of, load_visible_ticket, ticket_uuid
from domain.errors import NotFoundError, PermissionDeniedError
from domain.lifecycle import Role
from infra.api import StrictBooleanField, StrictCharField, StrictSerializer
from infra.llm import store
from infra.ratelimit.limiter import limiter
from infra.schema import ErrorSerializer


@dataclass(frozen=True)
class DraftPorts:
    generate_later: Callable[[UUID, UUID], object]  # (ticket id, draft id): enqueue the task
    source: Callable[[], tuple[str, str]]  # (source, model) drafts come from now


_provider: Callable[[], DraftPorts] | None = None


def provide(factory: Callable[[], DraftPorts]) -> None:
    global _provider
    _provider = factory


def ports() -> DraftPorts:
    if _provider is None:
        raise ImproperlyConfigured("Drafts are wired by config.bootstrap; import it first.")
    return _provider()


class DraftThrottle(BaseThrottle):
    """Drafts per agent and for everyone, in the admin's window (``store.current``)."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if not settings.RATE_LIMITS or request.method != "POST":
            return True
        limits = store.current()
        window = int(limits["window_seconds"])
        self._wait = None
        # The agent's own limit first: a request refused there does not count for everyone.
        if limits["per_agent"] and request.user is not None and request.user.is_authenticated:
            key = f"drafts:user:{request.user.pk}"
            self._wait = limiter().hit(key, int(limits["per_agent"]), window)
        if self._wait is None and limits["global"]:
            self._wait = limiter().hit("drafts:global", int(limits["global"]), window)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class RequestDraftSerializer(StrictSerializer):
    language = StrictCharField(
        max_length=16,
        required=False,
        help_text="The language to write in (default: the agent's first language, else the "
        "ticket's).",
    )
    allow_internal = StrictBooleanField(
        default=False,
        help_text="Allow the draft to use internal notes' content (otherwise a draft that "
        "repeats one is withheld).",
    )


class DraftSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    ticket_id = serializers.UUIDField()
    requested_by = serializers.CharField()
    requested_version = serializers.IntegerField()
    language = serializers.CharField()
    allow_internal = serializers.BooleanField()
    status = serializers.ChoiceField(
        choices=["requested", "ready", "refused", "failed"],
        help_text="`requested`: being written (watch the WebSocket stream `drafts`); "
        "`refused` and `failed` come with a `reason` for the agent.",
    )
    text = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source
        allow_blank=True, help_text="`model`, or `retrieval` (similar resolved tickets)."
    )
    model = serializers.CharField(allow_blank=True)
    sent_message_id = serializers.UUIDField(allow_null=True)


class DraftRequestedSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The ticket.")
    version = serializers.IntegerField()
    position = serializers.IntegerField(allow_null=True)
    draft = DraftSerializer(help_text="The draft as it is when this answer is sent.")


def _present(ticket_id: UUID, draft: Any) -> dict[str, Any]:
    return {**draft.as_dict(), "ticket_id": str(ticket_id)}


def _require_staff(request: Request, ticket_id: UUID) -> None:
    if actor_of(request).role is Role.CUSTOMER:
        load_visible_ticket(request, ticket_id)  # not theirs: 404, like every read
        raise PermissionDeniedError("Only agents and admins use AI drafts.")


class DraftsView(APIView):
    throttle_classes = [DraftThrottle]

    @extend_schema(
        request=RequestDraftSerializer,
        responses={202: DraftRequestedSerializer},
        tags=["drafts"],
    )
    def post(self, request: Request, ticket_id: str) -> Response:
        """Ask for an AI draft reply. The text streams over the WebSocket (stream
        `drafts`) and is recorded on the ticket; it is never sent by itself."""
        tid = ticket_uuid(ticket_id)
        _require_staff(request, tid)
        data = RequestDraftSerializer.validated(request.data)
        if not store.current()["enabled"]:
            raise PermissionDenied("AI drafts are switched off in the settings.")
        actor = actor_of(request)
        app = get_application()
        language = data.get("language") or _language(actor.id, app.get_ticket(tid).language)
        draft_id = uuid4()
        res = app.request_draft(
            tid,
            actor,
            draft_id=draft_id,
            language=language,
            allow_internal=data["allow_internal"],
        )
        ports().generate_later(tid, draft_id)
        draft = app.get_ticket(tid).drafts[draft_id]  # eager: done already
        return Response(
            {**res.as_dict(), "draft": _present(tid, draft)},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/tickets/{tid}/drafts/{draft_id}"},
        )


def _language(user_id: str, fallback: str) -> str:
    try:
        languages = get_application().get_agent(user_id).languages
    except NotFoundError:
        return fallback
    return languages[0] if languages else fallback


class DraftDetailView(APIView):
    @extend_schema(responses={200: DraftSerializer}, tags=["drafts"])
    def get(self, request: Request, ticket_id: str, draft_id: str) -> Response:
        """One draft: for the agent who asked for it, and admins."""
        tid = ticket_uuid(ticket_id)
        _require_staff(request, tid)
        try:
            did = UUID(draft_id)
        except ValueError:
            raise NotFoundError("No such draft.", id=draft_id) from None
        actor = actor_of(request)
        ticket = get_application().get_ticket(tid)
        draft = ticket.draft_for(did, actor_id=actor.id, actor_role=actor.role)
        return Response(_present(tid, draft))


# ------------------------------------------------------------------------------ settings
class DraftSettingsSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(help_text="Whether agents may ask for drafts.")
    model = serializers.CharField(
        allow_blank=True,
        max_length=store.MODEL_MAX,
        help_text="The model to ask (empty: `DESKSTREAM_LLM_MODEL`).",
    )
    per_agent = serializers.IntegerField(
        min_value=0, max_value=10**6, help_text="Drafts per agent per window (0: no limit)."
    )
    # ``global`` is a keyword: the field is declared under another name and renamed.
    global_ = serializers.IntegerField(
        min_value=0, max_value=10**6, help_text="Drafts for everyone per window (0: no limit)."
    )
    window_seconds = serializers.IntegerField(min_value=1, max_value=10**6)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source
        read_only=True, help_text="Where drafts come from now: `model` or `retrieval`."
    )

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["global"] = fields.pop("global_")
        return fields


def _settings_present() -> dict[str, Any]:
    source, _ = ports().source()
    return {**store.present(), "source": source}


def _require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != "admin":
        raise PermissionDenied("Only admins manage draft settings.")


class DraftSettingsView(APIView):
    @extend_schema(responses={200: DraftSettingsSerializer}, tags=["settings"])
    def get(self, request: Request) -> Response:
        """The draft settings (staff may read them: the panel shows whether drafts are on)."""
        if getattr(request.user, "role", None) not in ("agent", "admin"):
            raise PermissionDenied("Only agents and admins read draft settings.")
        return Response(_settings_present())


class DraftSettingsEditView(APIView):
    @extend_schema(
        request=DraftSettingsSerializer,
        responses={
            200: DraftSettingsSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A field is refused."),
        },
        tags=["settings"],
    )
    def put(self, request: Request) -> Response:
        """Replace the draft settings (admins)."""
        _require_admin(request)
        data = request.data
        if isinstance(data, dict):  # what GET answers may be sent back: ``source`` is read-only
            data = {k: v for k, v in data.items() if k != "source"}
        try:
            values = store.parse(data)
        except ValueError as error:
            raise ValidationError(error.args[0]) from None
        with transaction.atomic():  # the change and its audit event, or neither
            before = store.present()
            store.store(values, by=str(request.user.pk))
            after = store.present()
            record(request, "settings.drafts", "settings:drafts", before, after)
        return Response(_settings_present())
