"""Users with a role, their profiles, and API sessions (refresh-token families)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    class Role(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        AGENT = "agent", "Agent"
        ADMIN = "admin", "Admin"

    email = models.EmailField(unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    social_provider = models.CharField(max_length=32, blank=True, default="")
    last_seen = models.DateTimeField(null=True, blank=True)
    # Set when an admin invited this agent or admin (social sign-in links to it by e-mail).
    invited_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.email


ROLE_CHOICES = User.Role.choices  # the API's RoleEnum (settings.SPECTACULAR_SETTINGS)


class CustomerProfile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="customer_profile")
    company = models.CharField(max_length=200, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")

    def __str__(self) -> str:
        return f"customer {self.user_id}"


class AgentProfile(models.Model):
    """Display data; what assignment decides on lives in the event-sourced Agent aggregate."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="agent_profile")
    title = models.CharField(max_length=100, blank=True, default="")
    agent_id = models.UUIDField(unique=True)

    def __str__(self) -> str:
        return f"agent {self.user_id}"


class AuthSession(models.Model):
    """One sign-in: the family of refresh tokens that rotate from it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True, default="")

    def __str__(self) -> str:
        return f"session {self.id} of user {self.user_id}"


class RefreshToken(models.Model):
    jti = models.UUIDField(primary_key=True)
    session = models.ForeignKey(AuthSession, on_delete=models.CASCADE, related_name="tokens")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh token {self.jti}"


class SignInCode(models.Model):
    """A one-time code that hands a finished social sign-in to the web app (ADR 0038).

    Only digests are stored: of the code (it travels in the URL fragment of the redirect to
    the web app) and of the browser binding (an HttpOnly cookie of the browser that signed
    in). Redeeming deletes the row, so a code works once; it also expires within a minute.
    """

    digest = models.CharField(primary_key=True, max_length=64)
    binding = models.CharField(max_length=64)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=32)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"sign-in code for user {self.user_id}"
