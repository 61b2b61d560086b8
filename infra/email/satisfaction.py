"""Signed one-click satisfaction links (ADR 0047).

A link names one ticket and its customer, is signed with the site's secret (Django's
``TimestampSigner``, its own salt) and expires after ``DESKSTREAM_CSAT_LINK_DAYS`` days. It
needs no sign-in: whoever holds it may rate that ticket as its customer, nothing else. The
rating is in the query string, outside the signature, so one token serves every rating; a
link clicked twice records nothing the second time (the aggregate stores a repeat of the same
rating as nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.core import signing

SALT = "deskstream.csat.v1"
RATINGS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class RatingGrant:
    ticket_id: UUID
    customer_id: str


class BadLinkError(Exception):
    """The token is not ours, was changed, or has expired (the message says which)."""


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def make_token(ticket_id: UUID, customer_id: str) -> str:
    return _signer().sign_object({"t": str(ticket_id), "c": customer_id}, compress=True)


def read_token(token: object) -> RatingGrant:
    if not isinstance(token, str) or not token or len(token) > 500:
        raise BadLinkError("The link is not valid.")
    try:
        data = _signer().unsign_object(token, max_age=settings.CSAT_LINK_DAYS * 86400)
    except signing.SignatureExpired:
        raise BadLinkError("The link has expired.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise BadLinkError("The link is not valid.") from None
    try:
        return RatingGrant(UUID(str(data["t"])), str(data["c"]))
    except (KeyError, ValueError, TypeError):
        raise BadLinkError("The link is not valid.") from None


def rating_links(ticket_id: UUID, customer_id: str) -> list[tuple[int, str]]:
    """One link per rating to the app's rating page, which records it (no sign-in)."""
    token = make_token(ticket_id, customer_id)
    return [
        (rating, f"{settings.PUBLIC_URL}/rate?{urlencode({'token': token, 'rating': rating})}")
        for rating in RATINGS
    ]
