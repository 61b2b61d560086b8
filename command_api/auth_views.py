"""Auth commands: refresh and log out an API session, and the demo sign-in (demo mode only)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api import StrictCharField, StrictSerializer
from infra.auth import tokens
from infra.auth.models import CustomerProfile, User
from infra.ratelimit.throttles import RefreshThrottle, SignInThrottle


class RefreshSerializer(StrictSerializer):
    refresh = StrictCharField(max_length=4096)


class DemoLoginSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("email"), str):
            raise serializers.ValidationError({"email": ["Must be a string."]})
        return super().to_internal_value(data)


class TokenPairSerializer(serializers.Serializer[dict[str, object]]):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


def _token_error(err: tokens.TokenError) -> Response:
    return Response({"error": err.code, "detail": err.detail}, status=401)


class RefreshView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [RefreshThrottle]

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = RefreshSerializer.validated(request.data)
        try:
            pair = tokens.rotate(data["refresh"])
        except tokens.TokenError as err:
            return _token_error(err)
        return Response(pair.as_dict())


class LogoutView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = RefreshSerializer.validated(request.data)
        try:
            tokens.logout(data["refresh"])
        except tokens.TokenError as err:
            return _token_error(err)
        return Response(status=204)


class DemoLoginView(APIView):
    """Sign in as any e-mail without a password; exists only when DESKSTREAM_DEMO is on."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema(request=DemoLoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        if not settings.DEMO_MODE:
            raise Http404
        data = DemoLoginSerializer.validated(request.data)
        email = data["email"].strip().lower()
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = User.objects.create(
                    username=email,
                    email=email,
                    role=User.Role.CUSTOMER,
                    first_name=email.split("@")[0],
                )
                user.set_unusable_password()
                user.save(update_fields=["password"])
                CustomerProfile.objects.create(user=user)
        if not user.is_active:
            return Response({"error": "user_inactive", "detail": "This account is disabled."}, 401)
        return Response(tokens.start_session(user).as_dict())
