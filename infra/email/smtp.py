"""``EmailSender`` over SMTP (``smtplib``): plain, STARTTLS or implicit TLS, optional login.

The SMTP transaction is driven step by step (what ``smtplib.SMTP.sendmail`` does) so that the
end of the message's data, the one step after which the server may deliver it, is written
only after ``hand_over()`` returned. A server delivers nothing whose data did not end (RFC
5321 §4.1.1.4): a connection lost before that point leaves nothing behind, and one lost
after it, before the server's answer, leaves the outcome unknown (``DeliveryUncertainError``).
"""

from __future__ import annotations

import io
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage

from infra.email.ports import (
    DeliveryUncertainError,
    EmailDeferredError,
    EmailRejectedError,
    HandOver,
    OutgoingEmail,
    no_hand_over,
)

TLS_MODES = ("none", "starttls", "ssl")
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    tls: str = "none"  # none | starttls | ssl
    timeout: float = 15.0


class SmtpEmailSender:
    def __init__(self, settings: SmtpSettings) -> None:
        if settings.tls not in TLS_MODES:
            raise ValueError(f"SMTP TLS mode must be one of {', '.join(TLS_MODES)}")
        self.settings = settings

    def send(self, email: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
        s = self.settings
        message = email.as_mime()
        client: smtplib.SMTP
        if s.tls == "ssl":
            client = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if s.user:
                client.login(s.user, s.password)
            _transfer(client, email, message, hand_over)
        finally:
            _quit(client)
        return email.message_id


def _transfer(
    client: smtplib.SMTP, email: OutgoingEmail, message: EmailMessage, hand_over: HandOver
) -> None:
    """MAIL, RCPT, DATA and the message, holding back its end until ``hand_over()``."""
    client.ehlo_or_helo_if_needed()
    code, reply = client.mail(email.from_address)
    if code != 250:
        _deferred(code, reply, "sender")
    code, reply = client.rcpt(email.to_address)
    if code not in (250, 251):
        if code >= 500:
            raise EmailRejectedError(f"recipient refused: {code} {reply!r}")
        raise EmailDeferredError(f"recipient deferred: {code} {reply!r}")
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        _deferred(code, reply, "data")
    buffer = io.BytesIO()
    BytesGenerator(buffer).flatten(message, linesep="\r\n")
    data = _LEADING_DOT.sub(b"..", buffer.getvalue())
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    client.send(data)
    try:
        hand_over()
    except BaseException:
        client.close()  # mid-data: the server drops the unfinished message
        raise
    try:
        client.send(b".\r\n")
        code, reply = client.getreply()
    except (OSError, smtplib.SMTPServerDisconnected) as err:
        raise DeliveryUncertainError(f"connection lost after the end of data: {err}") from err
    if code != 250:
        _deferred(code, reply, "message")


def _deferred(code: int, reply: bytes, what: str) -> None:
    """A refusal other than the recipient's: nothing was delivered; retried with backoff
    (the attempts are limited) as any other failed attempt."""
    raise EmailDeferredError(f"{what} refused: {code} {reply!r}")


def _quit(client: smtplib.SMTP) -> None:
    """End the session; what the server says to QUIT changes nothing any more."""
    try:
        if client.sock is not None:
            client.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        client.close()
