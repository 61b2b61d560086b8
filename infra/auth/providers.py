"""The social sign-in providers this installation offers, read from the environment.

A provider is on when its client id and secret are set (the generic OpenID Connect one also
needs its issuer); one half of a pair alone is a mistake, refused at start-up. Nothing here
imports Django or social-auth: ``config/settings.py`` calls it while settings load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The backend classes (infra/auth/social.py), by provider id: the id is the backend's name,
# the last segment of /api/auth/login/<id> and /api/auth/complete/<id>.
BACKENDS = {
    "google": "infra.auth.social.GoogleSignIn",
    "github": "infra.auth.social.GithubSignIn",
    "facebook": "infra.auth.social.FacebookSignIn",
    "oidc": "infra.auth.social.OidcSignIn",
}


# social-auth's pipeline (SOCIAL_AUTH_PIPELINE): its own steps, and ours in infra/auth/social.py
# (link by verified e-mail, or create a customer; remember the provider). Provider tokens are
# not stored: the pipeline has no load_extra_data step.
PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "infra.auth.social.user_by_verified_email",
    "social_core.pipeline.social_auth.associate_user",
    "infra.auth.social.remember_provider",
)


class ProviderConfigError(RuntimeError):
    """A provider is half configured."""


@dataclass(frozen=True)
class Provider:
    id: str
    name: str  # on the sign-in button: "Continue with <name>"
    backend: str  # dotted path of the social-auth backend class
    # social-auth's settings of this backend, without the SOCIAL_AUTH_<ID>_ prefix.
    settings: Mapping[str, Any] = field(default_factory=dict)


def _pair(env: Mapping[str, str], id_name: str, secret_name: str) -> tuple[str, str] | None:
    client_id = env.get(id_name, "").strip()
    secret = env.get(secret_name, "").strip()
    if not client_id and not secret:
        return None
    if not (client_id and secret):
        raise ProviderConfigError(f"Set both {id_name} and {secret_name}, or neither.")
    return client_id, secret


def from_environment(env: Mapping[str, str]) -> list[Provider]:
    """The configured providers, in the order the sign-in page shows them."""
    providers: list[Provider] = []
    google = _pair(env, "DESKSTREAM_GOOGLE_CLIENT_ID", "DESKSTREAM_GOOGLE_CLIENT_SECRET")
    if google:
        providers.append(
            Provider(
                "google",
                "Google",
                BACKENDS["google"],
                {"KEY": google[0], "SECRET": google[1]},
            )
        )
    github = _pair(env, "DESKSTREAM_GITHUB_CLIENT_ID", "DESKSTREAM_GITHUB_CLIENT_SECRET")
    if github:
        providers.append(
            Provider(
                "github",
                "GitHub",
                BACKENDS["github"],
                # user:email: the list of addresses with their "verified" flags.
                {"KEY": github[0], "SECRET": github[1], "SCOPE": ["user:email"]},
            )
        )
    facebook = _pair(env, "DESKSTREAM_FACEBOOK_CLIENT_ID", "DESKSTREAM_FACEBOOK_CLIENT_SECRET")
    if facebook:
        providers.append(
            Provider(
                "facebook",
                "Facebook",
                BACKENDS["facebook"],
                {
                    "KEY": facebook[0],
                    "SECRET": facebook[1],
                    "SCOPE": ["email"],
                    "PROFILE_EXTRA_PARAMS": {"fields": "id,name,first_name,last_name,email"},
                },
            )
        )
    oidc = _pair(env, "DESKSTREAM_OIDC_CLIENT_ID", "DESKSTREAM_OIDC_CLIENT_SECRET")
    issuer = env.get("DESKSTREAM_OIDC_ISSUER", "").strip().rstrip("/")
    if oidc or issuer:
        if not (oidc and issuer):
            raise ProviderConfigError(
                "The OpenID Connect provider needs DESKSTREAM_OIDC_ISSUER, "
                "DESKSTREAM_OIDC_CLIENT_ID and DESKSTREAM_OIDC_CLIENT_SECRET."
            )
        providers.append(
            Provider(
                "oidc",
                env.get("DESKSTREAM_OIDC_NAME", "").strip() or "OpenID Connect",
                BACKENDS["oidc"],
                {"KEY": oidc[0], "SECRET": oidc[1], "OIDC_ENDPOINT": issuer},
            )
        )
    return providers
