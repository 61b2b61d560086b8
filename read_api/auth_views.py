"""Auth queries: who am I, and the sign-in methods on offer."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.auth.models import User
from infra.automation.api import customers_set_priority


class MeSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField(source="display_name")
    role = serializers.ChoiceField(choices=User.Role.choices)
    may_set_priority = serializers.BooleanField(
        help_text="Whether this user may choose the priority of a ticket they open."
    )


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer})
    def get(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]  # IsAuthenticated guarantees it
        staff = user.role != User.Role.CUSTOMER
        me = {
            "id": user.pk,
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
            "may_set_priority": staff or customers_set_priority(),
        }
        return Response(MeSerializer(me).data)


class ProviderSerializer(serializers.Serializer[dict[str, str]]):
    id = serializers.CharField(help_text="google, github, facebook or oidc.")
    name = serializers.CharField()
    url = serializers.CharField(help_text="Where the browser goes to start this sign-in.")


class ProvidersSerializer(serializers.Serializer[dict[str, object]]):
    demo = serializers.BooleanField(help_text="Whether POST /api/auth/demo-login is open.")
    providers = ProviderSerializer(many=True)


class ProvidersView(APIView):
    """The sign-in methods on offer, for the sign-in page: the social providers that are
    configured (``settings.SOCIAL_PROVIDERS``, from the environment) and whether the demo
    sign-in is open."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: ProvidersSerializer})
    def get(self, request: Request) -> Response:
        providers = [
            {"id": p.id, "name": p.name, "url": reverse("auth-login", kwargs={"provider": p.id})}
            for p in settings.SOCIAL_PROVIDERS
        ]
        return Response({"demo": bool(settings.DEMO_MODE), "providers": providers})
