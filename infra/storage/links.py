"""Short-lived signed download links: ``/api/attachments/<id>?t=&u=&exp=&sig=``.

The signature (HMAC-SHA256 under a key derived from the secret key) binds the attachment,
its ticket, the user it was issued to and the expiry time; the download view checks it,
then asks the ticket again whether that user may read the file now.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

PATH = "/api/attachments/"


@dataclass(frozen=True)
class LinkClaims:
    attachment_id: UUID
    ticket_id: UUID
    user_id: str
    expires: int


class LinkError(ValueError):
    """Tampered, malformed or expired."""


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"deskstream.attachment-link:" + secret.encode()).digest()


def _signature(secret: str, claims: LinkClaims) -> str:
    message = f"{claims.attachment_id}|{claims.ticket_id}|{claims.user_id}|{claims.expires}"
    return hmac.new(_key(secret), message.encode(), hashlib.sha256).hexdigest()


def sign_link(
    secret: str, *, attachment_id: UUID, ticket_id: UUID, user_id: str, ttl: int,
    now: float | None = None,
) -> tuple[str, int]:  # fmt: skip
    """The link's path with its query, and when it expires (Unix seconds)."""
    expires = int(now if now is not None else time.time()) + ttl
    claims = LinkClaims(attachment_id, ticket_id, user_id, expires)
    query = urlencode(
        {"t": str(ticket_id), "u": user_id, "exp": expires, "sig": _signature(secret, claims)}
    )
    return f"{PATH}{attachment_id}?{query}", expires


def verify_link(
    secret: str, attachment_id: str, params: dict[str, str], now: float | None = None
) -> LinkClaims:
    try:
        expires_raw = params["exp"]
        if not (expires_raw.isascii() and expires_raw.isdigit()) or len(expires_raw) > 12:
            raise LinkError("The link is malformed.")
        claims = LinkClaims(UUID(attachment_id), UUID(params["t"]), params["u"], int(expires_raw))
        given = params["sig"]
    except (KeyError, ValueError):
        raise LinkError("The link is malformed.") from None
    if not hmac.compare_digest(given.encode(), _signature(secret, claims).encode()):
        raise LinkError("The link's signature does not match.")
    if claims.expires < (now if now is not None else time.time()):
        raise LinkError("The link has expired; open the ticket again for a fresh one.")
    return claims
