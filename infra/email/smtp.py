"""``EmailSender`` over SMTP (``smtplib``): plain, STARTTLS or implicit TLS, optional login."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from infra.email.ports import EmailRejectedError, OutgoingEmail

TLS_MODES = ("none", "starttls", "ssl")


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

    def send(self, email: OutgoingEmail) -> str:
        s = self.settings
        message = email.as_mime()
        client: smtplib.SMTP
        if s.tls == "ssl":
            client = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        with client:
            if s.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if s.user:
                client.login(s.user, s.password)
            try:
                client.send_message(message)
            except smtplib.SMTPRecipientsRefused as err:
                raise EmailRejectedError(f"recipient refused: {err.recipients}") from err
        return email.message_id
